import subprocess

# The seed feeds `nslookup` its commands on stdin; `sort` shows the same
# without the network. Run with: procbridge python --allow-run sort communicate_story.py
print('$ sort')
p = subprocess.Popen(['sort'], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
output, err = p.communicate(b'set q=mx\npython.org\nexit\n')
print(output.decode('utf-8'))
print('Exit code:', p.returncode)
