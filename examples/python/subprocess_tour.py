"""subprocess beyond call: run with capture, text, input, check, timeouts,
a pipeline between two commands, and what happens to an ungranted one.
Run with: procbridge python --allow-run sort --allow-run sh --allow-run wc --allow-run sleep subprocess_tour.py"""
import subprocess
import sys

r = subprocess.run(['sort', '-r'], input=b'a\nc\nb\n', capture_output=True)
print('run:', r.returncode, r.stdout)

print('text:', subprocess.run(['sort'], input='y\nx\n', capture_output=True, text=True).stdout.split())

print('check_output:', subprocess.check_output(['sh', '-c', 'echo out; echo err >&2'],
                                               stderr=subprocess.STDOUT))

try:
    subprocess.run(['sh', '-c', 'echo before; exit 3'], check=True, capture_output=True)
except subprocess.CalledProcessError as e:
    print('CalledProcessError:', e.returncode, e, e.stdout, e.output is e.stdout)

try:
    subprocess.run(['sh', '-c', 'echo partial; sleep 10'], capture_output=True, timeout=0.5)
except subprocess.TimeoutExpired as e:
    print('TimeoutExpired:', e.timeout, e.stdout)

p = subprocess.Popen(['sh', '-c', 'sleep 10'])
print('poll while running:', p.poll())
p.terminate()
print('terminated:', p.wait())

first = subprocess.Popen(['sort'], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
second = subprocess.Popen(['wc', '-l'], stdin=first.stdout, stdout=subprocess.PIPE)
first.stdin.write(b'3\n1\n2\n')
first.stdin.close()
print('pipeline:', second.communicate()[0].strip(), first.wait(), second.returncode)

with subprocess.Popen(['sort'], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) as p:
    out, _ = p.communicate('pear\napple\n')
print('with Popen:', out.split(), p.returncode)

r = subprocess.run(['sh', '-c', 'exit 4'])
print('run without pipes:', r.returncode, r.stdout, r.stderr, r)
print('run, check, success:', subprocess.run(['sh', '-c', 'exit 0'], check=True).returncode)
try:
    subprocess.run(['sh', '-c', 'exit 5'], check=True)
except subprocess.CalledProcessError as e:
    print('run, check, failure:', e.returncode, e.cmd, e.output, e.stderr)

with subprocess.Popen(['sh', '-c', 'exit 0']) as p:
    pass
print('pid after with:', isinstance(p.pid, int) and p.pid > 0, p.returncode)

# Commands whose stdio are none of our pipes: started, waited for and given
# back at once.
sys.stdout.flush()
print('call, stdout to /dev/null:', subprocess.call(['sh', '-c', 'echo hidden'], stdout=subprocess.DEVNULL))
sys.stdout.flush()
print('call, stderr to stdout:', subprocess.call(['sh', '-c', 'echo joined >&2'], stderr=subprocess.STDOUT))
print('call with a shell:', subprocess.call('exit 6', shell=True))
try:
    subprocess.run(['sleep', '10'], timeout=0.3)
except subprocess.TimeoutExpired as e:
    print('run, timeout:', e.cmd, round(e.timeout, 1), e.output, e.stderr)
try:
    subprocess.call(['sleep', '10'], timeout=0.3)
except subprocess.TimeoutExpired as e:
    print('call, timeout:', e)
first = subprocess.Popen(['sort'], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
first.stdin.write(b'b\na\n')
first.stdin.close()
sys.stdout.flush()
print('call at the end of a pipeline:', subprocess.call(['wc', '-l'], stdin=first.stdout), first.wait())
