"""What scripts expect of subprocess's file objects, of waits with a
deadline already past, and of the process's own clocks and signals.
Run with: procbridge python --allow-run sh --allow-run sleep streams_and_clocks.py"""
import multiprocessing as mp
import os
import queue
import subprocess
import sys
import time

# bufsize=0: every write reaches the command at once, no flush needed.
p = subprocess.Popen(['sh', '-c', 'read line; echo "got $line"'],
                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
p.stdin.write(b'ping\n')
print('unbuffered:', p.stdout.readline())
p.wait()

# Text mode with bufsize=1: a newline sends the line.
p = subprocess.Popen(['sh', '-c', 'read a; echo "1 $a"; read b; echo "2 $b"'],
                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
p.stdin.write('first\n')
print('line buffered:', p.stdout.readline().strip())
p.stdin.write('second\n')
print('line buffered:', p.stdout.readline().strip())
p.stdin.close()
p.wait()

# A line read by Python code, then communicate(): nothing read ahead is lost.
p = subprocess.Popen(['sh', '-c', 'echo a; echo b; echo c'], stdout=subprocess.PIPE)
print('readline:', p.stdout.readline())
print('then communicate:', p.communicate())

# Text mode reads universal newlines: a lone \r is a line end too.
print('newlines:', repr(subprocess.run(['sh', '-c', r'printf "a\rb\r\nc"'],
                                       capture_output=True, text=True).stdout))
print('check_output:', repr(subprocess.check_output(['sh', '-c', r'printf "x\ry"'], text=True)))

# A deadline already past is a look, not an error.
q = mp.Queue()
for name, wait in [('Queue.get', lambda: q.get(timeout=-1)),
                   ('Queue.get 0', lambda: q.get(timeout=0))]:
    try:
        wait()
    except queue.Empty:
        print(name, 'Empty')
try:
    subprocess.run(['sleep', '1'], timeout=-0.5)
except subprocess.TimeoutExpired as e:
    print('run with a past deadline: TimeoutExpired')

# os.kill(pid, 0): is it there?
child = mp.Process(target=time.sleep, args=(0.2,))
child.start()
os.kill(child.pid, 0)
print('kill 0 on a live child: no error')
child.join()
os.kill(os.getpid(), 0)
print('kill 0 on itself: no error')

# CPU time, not wall time.
start_cpu, start_wall = time.process_time(), time.monotonic()
time.sleep(0.3)
idle = time.process_time() - start_cpu
print('sleeping costs little CPU:', idle < 0.2, time.monotonic() - start_wall >= 0.3)
start_cpu = time.process_time()
total = sum(i * i for i in range(300_000))
print('computing costs CPU:', time.process_time() - start_cpu > 0)
t = os.times()
print('os.times:', type(t).__name__, t.user > 0, t.elapsed > 0)


# Pool callbacks run while the parent sleeps.
def square(n):
    return n * n


if __name__ == '__main__':
    done = []
    with mp.get_context('fork').Pool(2) as pool:
        for n in range(8):
            pool.apply_async(square, (n,), callback=done.append)
        deadline = time.monotonic() + 10
        while len(done) < 8 and time.monotonic() < deadline:
            time.sleep(0.05)
        print('callbacks while sleeping:', sorted(done))
    sys.stdout.flush()
