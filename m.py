import sys, socket, os
from kazoo.client import KazooClient
pid=int(sys.argv[1])
def rss(): 
    return int([l for l in open('/proc/%d/status'%pid) if l.startswith('VmRSS')][0].split()[1])
def mntr():
    s=socket.create_connection(('127.0.0.1',22781)); s.sendall(b'mntr'); d=b''
    while True:
        b=s.recv(65536)
        if not b: break
        d+=b
    return dict(l.split('\t',1) for l in d.decode().splitlines() if '\t' in l)
zk=KazooClient(hosts='127.0.0.1:22781'); zk.start()
zk.create('/m')
r0=rss()
N=200000
for b in range(N//1000):
    t=zk.transaction()
    for i in range(1000):
        t.create('/m/node%07d'%(b*1000+i), b'x'*100)
    t.commit()
r1=rss(); m=mntr()
print('znodes',m['zk_znode_count'],'data',m['zk_approximate_data_size'],'rss_delta_kib',r1-r0,'per_znode_bytes',(r1-r0)*1024/N, 'log', m.get('rk_log_bytes'))
