import subprocess

# The seed runs `nslookup www.python.org`, which needs the network; any
# granted command shows the same: its output passes through, its exit code
# comes back. Run with: procbridge python --allow-run echo call_story.py
print('$ echo hello from a child process')
r = subprocess.call(['echo', 'hello from a child process'])
print('Exit code:', r)
