"""The Python equivalent of the hello guest: args, pid and parent pid."""

import os
import sys

print(" ".join(sys.argv[1:]))
print(f"pid {os.getpid()}")
print(f"ppid {os.getppid()}")
