# procbridge: gives this interpreter the process model of os.fork,
# multiprocessing and subprocess (see procbridge/__init__.py).
import procbridge._os
