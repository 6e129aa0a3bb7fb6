/*
 * CuratorCheck: Apache Curator 5 (the Debian package) against a server, one scenario a run.
 *
 *   java -cp <classes>:/usr/share/java/curator-recipes.jar CuratorCheck <host:port> <root> <scenario>
 *
 * Prints "ok <scenario>" and exits 0 when every check held; otherwise prints what differed
 * and exits 1. test_curator.py runs each scenario against every target, ZooKeeper 3.8
 * included, so each expectation here is what ZooKeeper does.
 */
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Set;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;

import org.apache.curator.RetryPolicy;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.api.transaction.CuratorOp;
import org.apache.curator.framework.api.transaction.CuratorTransactionResult;
import org.apache.curator.framework.api.transaction.OperationType;
import org.apache.curator.framework.recipes.atomic.AtomicValue;
import org.apache.curator.framework.recipes.atomic.DistributedAtomicLong;
import org.apache.curator.framework.recipes.barriers.DistributedDoubleBarrier;
import org.apache.curator.framework.recipes.cache.CuratorCache;
import org.apache.curator.framework.recipes.cache.CuratorCacheListener;
import org.apache.curator.framework.recipes.cache.PathChildrenCache;
import org.apache.curator.framework.recipes.cache.PathChildrenCacheEvent;
import org.apache.curator.framework.recipes.cache.TreeCache;
import org.apache.curator.framework.recipes.cache.TreeCacheEvent;
import org.apache.curator.framework.recipes.leader.LeaderSelector;
import org.apache.curator.framework.recipes.leader.LeaderSelectorListenerAdapter;
import org.apache.curator.framework.recipes.shared.SharedCount;
import org.apache.curator.framework.recipes.shared.SharedCountListener;
import org.apache.curator.framework.recipes.shared.SharedCountReader;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.framework.recipes.locks.InterProcessReadWriteLock;
import org.apache.curator.framework.recipes.locks.InterProcessSemaphoreV2;
import org.apache.curator.framework.recipes.locks.Lease;
import org.apache.curator.framework.recipes.nodes.PersistentNode;
import org.apache.curator.framework.recipes.queue.DistributedQueue;
import org.apache.curator.framework.recipes.queue.QueueBuilder;
import org.apache.curator.framework.recipes.queue.QueueConsumer;
import org.apache.curator.framework.recipes.queue.QueueSerializer;
import org.apache.curator.framework.state.ConnectionState;
import org.apache.curator.retry.ExponentialBackoffRetry;
import org.apache.zookeeper.AddWatchMode;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.WatchedEvent;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.ZooDefs;
import org.apache.zookeeper.ZooKeeper;
import org.apache.zookeeper.data.ACL;
import org.apache.zookeeper.data.Id;
import org.apache.zookeeper.data.Stat;
import org.apache.zookeeper.server.auth.DigestAuthenticationProvider;

public final class CuratorCheck {
	static String connect;
	static String root;
	static final List<CuratorFramework> clients = new ArrayList<>();

	public static void main(String[] args) throws Exception {
		if (args.length != 3) {
			System.err.println("usage: CuratorCheck host:port root scenario");
			System.exit(2);
		}
		connect = args[0];
		root = args[1];
		String scenario = args[2];
		int rc = 0;
		try {
			run(scenario);
			System.out.println("ok " + scenario);
		} catch (Throwable t) {
			System.out.println("FAILED " + scenario + ": " + t);
			t.printStackTrace(System.out);
			rc = 1;
		} finally {
			for (CuratorFramework c : clients)
				c.close();
		}
		System.out.flush();
		System.exit(rc); /* recipes leave non-daemon threads behind */
	}

	static void run(String scenario) throws Exception {
		switch (scenario) {
		case "framework": framework(); break;
		case "transaction": transaction(); break;
		case "acl": acl(); break;
		case "persistent_watch": persistentWatch(); break;
		case "mutex": mutex(); break;
		case "semaphore": semaphore(); break;
		case "rwlock": rwlock(); break;
		case "latch": latch(); break;
		case "atomic_long": atomicLong(); break;
		case "queue": queue(); break;
		case "barrier": barrier(); break;
		case "curator_cache": curatorCache(); break;
		case "children_cache": childrenCache(); break;
		case "persistent_node": persistentNode(); break;
		case "failover": failover(); break;
		case "tree_cache": treeCache(); break;
		case "shared_count": sharedCount(); break;
		case "selector": selector(); break;
		case "ttl": ttl(); break;
		case "config": config(); break;
		default: throw new IllegalArgumentException("unknown scenario " + scenario);
		}
	}

	/* ---- helpers ---------------------------------------------------------------- */

	static void check(boolean ok, String what) {
		if (!ok)
			throw new AssertionError(what);
	}

	static void eq(Object want, Object got, String what) {
		if (want == null ? got != null : !want.equals(got))
			throw new AssertionError(what + ": want <" + want + "> got <" + got + ">");
	}

	static byte[] b(String s) {
		return s.getBytes(StandardCharsets.UTF_8);
	}

	static String s(byte[] b) {
		return b == null ? null : new String(b, StandardCharsets.UTF_8);
	}

	static CuratorFramework client(CuratorFrameworkFactory.Builder builder) throws Exception {
		RetryPolicy retry = new ExponentialBackoffRetry(100, 10);
		CuratorFramework c = builder.connectString(connect).retryPolicy(retry)
			.sessionTimeoutMs(10000).connectionTimeoutMs(10000).build();
		clients.add(c);
		c.start();
		check(c.blockUntilConnected(20, TimeUnit.SECONDS), "connected within 20 s");
		return c;
	}

	static CuratorFramework client() throws Exception {
		return client(CuratorFrameworkFactory.builder());
	}

	/* Runs n tasks at once, each on its own client; rethrows the first failure. */
	interface Task {
		void run(int i, CuratorFramework c) throws Exception;
	}

	static void parallel(int n, Task task) throws Exception {
		List<CuratorFramework> cs = new ArrayList<>();
		for (int i = 0; i < n; i++)
			cs.add(client());
		ExecutorService pool = Executors.newFixedThreadPool(n);
		try {
			List<Future<Void>> fs = new ArrayList<>();
			for (int i = 0; i < n; i++) {
				final int k = i;
				fs.add(pool.submit(() -> {
					task.run(k, cs.get(k));
					return null;
				}));
			}
			for (Future<Void> f : fs)
				f.get(120, TimeUnit.SECONDS);
		} finally {
			pool.shutdownNow();
		}
	}

	static void await(CountDownLatch l, String what) throws InterruptedException {
		check(l.await(20, TimeUnit.SECONDS), what + " within 20 s");
	}

	/* ---- the framework ------------------------------------------------------------ */

	static void framework() throws Exception {
		CuratorFramework c = client();
		String deep = root + "/a/b/c";
		eq(deep, c.create().creatingParentContainersIfNeeded().forPath(deep, b("v0")), "created path");
		/* Curator makes the missing parents containers (ZooKeeper 3.5+), whose Stat
		 * shows ephemeralOwner 0: the container marker stays inside the server. */
		Stat parent = c.checkExists().forPath(root + "/a/b");
		check(parent != null, root + "/a/b exists");
		eq(0L, parent.getEphemeralOwner(), "a container's ephemeralOwner");
		eq(1, parent.getNumChildren(), "numChildren of the parent");
		eq("v0", s(c.getData().forPath(deep)), "data");

		Stat st = c.setData().withVersion(0).forPath(deep, b("v1"));
		eq(1, st.getVersion(), "version after one setData");
		try {
			c.setData().withVersion(0).forPath(deep, b("v2"));
			throw new AssertionError("setData at a stale version succeeded");
		} catch (KeeperException.BadVersionException e) {
			eq(deep, e.getPath(), "BadVersion's path");
		}
		eq("v1", s(c.getData().forPath(deep)), "data after the refused setData");

		/* create().orSetData(): the second call sets. */
		String os = root + "/or";
		c.create().orSetData().forPath(os, b("x"));
		c.create().orSetData().forPath(os, b("y"));
		Stat ost = new Stat();
		eq("y", s(c.getData().storingStatIn(ost).forPath(os)), "orSetData's value");
		eq(1, ost.getVersion(), "orSetData's version");

		/* withProtection: the name carries Curator's _c_<uuid>- marker, then the counter. */
		c.create().forPath(root + "/p");
		String prot = c.create().withProtection().withMode(CreateMode.EPHEMERAL_SEQUENTIAL)
			.forPath(root + "/p/lock-");
		String name = prot.substring(prot.lastIndexOf('/') + 1);
		check(name.matches("_c_[0-9a-f-]{36}-lock-0000000000"), "protected name " + name);
		eq(Collections.singletonList(name), c.getChildren().forPath(root + "/p"), "children");
		Stat eph = c.checkExists().forPath(prot);
		eq(c.getZookeeperClient().getZooKeeper().getSessionId(), eph.getEphemeralOwner(),
		   "the protected node's owner");

		for (String k : new String[] { "z", "m", "b" })
			c.create().creatingParentsIfNeeded().forPath(root + "/p2/" + k);
		List<String> kids = new ArrayList<>(c.getChildren().forPath(root + "/p2"));
		Collections.sort(kids);
		eq(Arrays.asList("b", "m", "z"), kids, "children of p2");

		c.delete().guaranteed().deletingChildrenIfNeeded().forPath(root + "/a");
		eq(null, c.checkExists().forPath(root + "/a"), "deleted subtree");
		try {
			c.delete().forPath(root + "/a");
			throw new AssertionError("delete of a missing node succeeded");
		} catch (KeeperException.NoNodeException e) {
			eq(root + "/a", e.getPath(), "NoNode's path");
		}
		try {
			c.create().forPath(root + "/p2/b");
			throw new AssertionError("create of an existing node succeeded");
		} catch (KeeperException.NodeExistsException e) {
			eq(root + "/p2/b", e.getPath(), "NodeExists's path");
		}
		try {
			c.delete().forPath(root + "/p2");
			throw new AssertionError("delete of a node with children succeeded");
		} catch (KeeperException.NotEmptyException e) {
			eq(root + "/p2", e.getPath(), "NotEmpty's path");
		}
	}

	static void transaction() throws Exception {
		CuratorFramework c = client();
		c.create().forPath(root + "/t", b("0"));
		List<CuratorOp> ops = Arrays.asList(
			c.transactionOp().create().forPath(root + "/t/a", b("a")),
			c.transactionOp().create().withMode(CreateMode.PERSISTENT_SEQUENTIAL).forPath(root + "/t/s-", b("s")),
			c.transactionOp().setData().forPath(root + "/t", b("1")),
			c.transactionOp().check().withVersion(1).forPath(root + "/t"),
			c.transactionOp().delete().forPath(root + "/t/a"));
		List<CuratorTransactionResult> rs = c.transaction().forOperations(ops);
		eq(5, rs.size(), "results");
		eq(OperationType.CREATE, rs.get(0).getType(), "op 0");
		eq(root + "/t/a", rs.get(0).getResultPath(), "op 0 path");
		eq(OperationType.CREATE, rs.get(1).getType(), "op 1");
		eq(root + "/t/s-0000000001", rs.get(1).getResultPath(), "op 1's sequential path");
		eq(OperationType.SET_DATA, rs.get(2).getType(), "op 2");
		eq(1, rs.get(2).getResultStat().getVersion(), "op 2's version");
		eq(OperationType.CHECK, rs.get(3).getType(), "op 3");
		eq(OperationType.DELETE, rs.get(4).getType(), "op 4");
		eq(Collections.singletonList("s-0000000001"), c.getChildren().forPath(root + "/t"), "children after");

		/* A failing check undoes the whole transaction. */
		List<CuratorOp> bad = Arrays.asList(
			c.transactionOp().create().forPath(root + "/t/x"),
			c.transactionOp().check().withVersion(7).forPath(root + "/t"),
			c.transactionOp().setData().forPath(root + "/t", b("2")));
		try {
			c.transaction().forOperations(bad);
			throw new AssertionError("a transaction with a failing check succeeded");
		} catch (KeeperException.BadVersionException e) {
			List<String> codes = new ArrayList<>();
			for (org.apache.zookeeper.OpResult r : e.getResults())
				codes.add(r instanceof org.apache.zookeeper.OpResult.ErrorResult
					? Integer.toString(((org.apache.zookeeper.OpResult.ErrorResult) r).getErr())
					: r.getClass().getSimpleName());
			/* ZooKeeper's answer: 0 for the ops before the failed one, its error, then
			 * RUNTIMEINCONSISTENCY (-2) for the rest. */
			eq(Arrays.asList("0", "-103", "-2"), codes, "the results of the failed transaction");
		}
		eq(null, c.checkExists().forPath(root + "/t/x"), "rolled-back create");
		eq("1", s(c.getData().forPath(root + "/t")), "rolled-back setData");
	}

	static void acl() throws Exception {
		CuratorFramework owner = client(CuratorFrameworkFactory.builder()
			.authorization("digest", b("alice:secret")));
		CuratorFramework other = client();
		String digest = DigestAuthenticationProvider.generateDigest("alice:secret");
		List<ACL> mine = Collections.singletonList(new ACL(ZooDefs.Perms.ALL, new Id("digest", digest)));
		String p = root + "/secret";
		owner.create().creatingParentsIfNeeded().withACL(mine).forPath(p, b("hidden"));
		eq("hidden", s(owner.getData().forPath(p)), "the owner reads");
		try {
			other.getData().forPath(p);
			throw new AssertionError("a client without the digest read the node");
		} catch (KeeperException.NoAuthException e) {
			eq(p, e.getPath(), "NoAuth's path");
		}
		Stat st = new Stat();
		List<ACL> got = owner.getACL().storingStatIn(st).forPath(p);
		eq(mine, got, "getACL");
		eq(0, st.getAversion(), "aversion");
		owner.setACL().withACL(ZooDefs.Ids.OPEN_ACL_UNSAFE).forPath(p);
		eq("hidden", s(other.getData().forPath(p)), "readable after setACL");
		eq(1, other.checkExists().forPath(p).getAversion(), "aversion after setACL");
	}

	static void persistentWatch() throws Exception {
		CuratorFramework c = client();
		c.create().forPath(root + "/w");
		BlockingQueue<String> events = new LinkedBlockingQueue<>();
		Watcher w = (WatchedEvent e) -> {
			if (e.getType() != Watcher.Event.EventType.None)
				events.add(e.getType() + " " + e.getPath());
		};
		c.watchers().add().withMode(AddWatchMode.PERSISTENT_RECURSIVE).usingWatcher(w).forPath(root + "/w");
		c.create().forPath(root + "/w/x", b("1"));
		c.create().forPath(root + "/w/x/y", b("1"));
		c.setData().forPath(root + "/w/x", b("2"));
		c.delete().forPath(root + "/w/x/y");
		c.setData().forPath(root + "/w", b("3"));
		List<String> want = Arrays.asList(
			"NodeCreated " + root + "/w/x",
			"NodeCreated " + root + "/w/x/y",
			"NodeDataChanged " + root + "/w/x",
			"NodeDeleted " + root + "/w/x/y",
			"NodeDataChanged " + root + "/w");
		List<String> got = new ArrayList<>();
		while (got.size() < want.size()) {
			String e = events.poll(10, TimeUnit.SECONDS);
			check(e != null, "event " + got.size() + " of " + want + " within 10 s; got " + got);
			got.add(e);
		}
		eq(want, got, "recursive watch events");
		c.watchers().remove(w).forPath(root + "/w");
		/* The client reports the removal itself. */
		eq("PersistentWatchRemoved " + root + "/w", events.poll(10, TimeUnit.SECONDS), "the removal");
		c.create().forPath(root + "/w/after");
		c.sync().forPath(root + "/w");
		Thread.sleep(200);
		eq(null, events.poll(), "an event after the watch was removed");
	}

	/* ---- locks and leaders ---------------------------------------------------------- */

	static void mutex() throws Exception {
		final String lockPath = root + "/lock";
		final String counter = root + "/count";
		client().create().forPath(counter, b("0"));
		AtomicInteger holders = new AtomicInteger();
		AtomicInteger maxHolders = new AtomicInteger();
		parallel(5, (i, c) -> {
			InterProcessMutex m = new InterProcessMutex(c, lockPath);
			for (int k = 0; k < 20; k++) {
				check(m.acquire(30, TimeUnit.SECONDS), "lock acquired within 30 s");
				check(m.acquire(1, TimeUnit.SECONDS), "re-entered");
				int h = holders.incrementAndGet();
				maxHolders.accumulateAndGet(h, Math::max);
				int v = Integer.parseInt(s(c.getData().forPath(counter)));
				c.setData().forPath(counter, b(Integer.toString(v + 1)));
				holders.decrementAndGet();
				m.release();
				m.release();
				check(!m.isAcquiredInThisProcess(), "released");
			}
		});
		eq(1, maxHolders.get(), "holders at once");
		CuratorFramework c = client();
		eq("100", s(c.getData().forPath(counter)), "counter");
		eq(Collections.emptyList(), c.getChildren().forPath(lockPath), "lock nodes left");
	}

	static void semaphore() throws Exception {
		final String path = root + "/sem";
		AtomicInteger holders = new AtomicInteger();
		AtomicInteger maxHolders = new AtomicInteger();
		parallel(6, (i, c) -> {
			InterProcessSemaphoreV2 sem = new InterProcessSemaphoreV2(c, path, 2);
			for (int k = 0; k < 4; k++) {
				Lease lease = sem.acquire(30, TimeUnit.SECONDS);
				check(lease != null, "lease within 30 s");
				int h = holders.incrementAndGet();
				maxHolders.accumulateAndGet(h, Math::max);
				Thread.sleep(20);
				holders.decrementAndGet();
				sem.returnLease(lease);
			}
		});
		eq(2, maxHolders.get(), "leases held at once");
	}

	static void rwlock() throws Exception {
		final String path = root + "/rw";
		CuratorFramework r1 = client(), r2 = client(), w = client();
		InterProcessReadWriteLock l1 = new InterProcessReadWriteLock(r1, path);
		InterProcessReadWriteLock l2 = new InterProcessReadWriteLock(r2, path);
		InterProcessReadWriteLock lw = new InterProcessReadWriteLock(w, path);
		check(l1.readLock().acquire(10, TimeUnit.SECONDS), "reader 1");
		check(l2.readLock().acquire(10, TimeUnit.SECONDS), "reader 2 beside reader 1");
		check(!lw.writeLock().acquire(500, TimeUnit.MILLISECONDS), "the writer waits for the readers");
		l1.readLock().release();
		check(!lw.writeLock().acquire(300, TimeUnit.MILLISECONDS), "the writer waits for reader 2");
		l2.readLock().release();
		check(lw.writeLock().acquire(10, TimeUnit.SECONDS), "the writer after the readers");
		check(!l1.readLock().acquire(300, TimeUnit.MILLISECONDS), "a reader waits for the writer");
		lw.writeLock().release();
		check(l1.readLock().acquire(10, TimeUnit.SECONDS), "a reader after the writer");
		l1.readLock().release();
	}

	static void latch() throws Exception {
		final String path = root + "/leader";
		List<LeaderLatch> latches = new ArrayList<>();
		for (int i = 0; i < 3; i++) {
			LeaderLatch l = new LeaderLatch(client(), path, "p" + i);
			l.start();
			latches.add(l);
		}
		LeaderLatch first = waitForOneLeader(latches);
		long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
		while (latches.get(0).getParticipants().size() < 3 && System.nanoTime() < end)
			Thread.sleep(20);
		eq(3, latches.get(0).getParticipants().size(), "participants");
		for (LeaderLatch l : latches)
			eq(first.getId(), l.getLeader().getId(), "the leader as " + l.getId() + " sees it");
		first.close();
		latches.remove(first);
		LeaderLatch second = waitForOneLeader(latches);
		check(second != first, "a new leader");
		for (LeaderLatch l : latches)
			eq(second.getId(), l.getLeader().getId(), "the new leader as " + l.getId() + " sees it");
		for (LeaderLatch l : latches)
			l.close();
	}

	static LeaderLatch waitForOneLeader(List<LeaderLatch> latches) throws Exception {
		long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(20);
		while (System.nanoTime() < end) {
			List<LeaderLatch> leaders = new ArrayList<>();
			for (LeaderLatch l : latches)
				if (l.hasLeadership())
					leaders.add(l);
			check(leaders.size() <= 1, "two leaders at once");
			if (leaders.size() == 1)
				return leaders.get(0);
			Thread.sleep(20);
		}
		throw new AssertionError("no leader within 20 s");
	}

	/* ---- counters, queues, barriers ----------------------------------------------- */

	static void atomicLong() throws Exception {
		final String path = root + "/along";
		parallel(4, (i, c) -> {
			DistributedAtomicLong n = new DistributedAtomicLong(c, path, new ExponentialBackoffRetry(10, 29));
			for (int k = 0; k < 25; k++) {
				AtomicValue<Long> v = n.increment();
				check(v.succeeded(), "increment succeeded");
				eq(v.preValue() + 1, (long) v.postValue(), "post = pre + 1");
			}
		});
		DistributedAtomicLong n = new DistributedAtomicLong(client(), path, new ExponentialBackoffRetry(10, 3));
		eq(100L, n.get().postValue(), "total");
	}

	static void queue() throws Exception {
		final String path = root + "/queue";
		final int items = 200;
		QueueSerializer<String> ser = new QueueSerializer<String>() {
			public byte[] serialize(String item) {
				return b(item);
			}

			public String deserialize(byte[] bytes) {
				return s(bytes);
			}
		};
		Set<String> seen = Collections.synchronizedSet(new HashSet<>());
		AtomicInteger dups = new AtomicInteger();
		CountDownLatch all = new CountDownLatch(items);
		QueueConsumer<String> consumer = new QueueConsumer<String>() {
			public void consumeMessage(String m) {
				if (!seen.add(m))
					dups.incrementAndGet();
				all.countDown();
			}

			public void stateChanged(CuratorFramework c, ConnectionState s) {
			}
		};
		DistributedQueue<String> in = QueueBuilder.builder(client(), consumer, ser, path).buildQueue();
		in.start();
		DistributedQueue<String> out = QueueBuilder.builder(client(), null, ser, path).buildQueue();
		out.start();
		for (int i = 0; i < items; i++)
			out.put("item-" + i);
		await(all, items + " items consumed");
		eq(0, dups.get(), "items consumed twice");
		eq(items, seen.size(), "distinct items");
		out.close();
		in.close();
	}

	static void barrier() throws Exception {
		final String path = root + "/barrier";
		AtomicInteger entered = new AtomicInteger();
		AtomicInteger insideWhenEntered = new AtomicInteger(Integer.MAX_VALUE);
		parallel(3, (i, c) -> {
			DistributedDoubleBarrier bar = new DistributedDoubleBarrier(c, path, 3);
			entered.incrementAndGet();
			check(bar.enter(30, TimeUnit.SECONDS), "entered within 30 s");
			insideWhenEntered.accumulateAndGet(entered.get(), Math::min);
			check(bar.leave(30, TimeUnit.SECONDS), "left within 30 s");
		});
		eq(3, insideWhenEntered.get(), "members that had arrived when one got through");
	}

	/* ---- caches ------------------------------------------------------------------- */

	static void curatorCache() throws Exception {
		CuratorFramework c = client();
		final String p = root + "/cc";
		c.create().forPath(p, b("r"));
		c.create().forPath(p + "/old", b("o"));
		BlockingQueue<String> events = new LinkedBlockingQueue<>();
		CountDownLatch init = new CountDownLatch(1);
		CuratorCache cache = CuratorCache.build(c, p);
		cache.listenable().addListener(CuratorCacheListener.builder()
			.forCreates(n -> events.add("create " + n.getPath() + " " + s(n.getData())))
			.forChanges((o, n) -> events.add("change " + n.getPath() + " " + s(o.getData()) + "->" + s(n.getData())))
			.forDeletes(o -> events.add("delete " + o.getPath()))
			.forInitialized(init::countDown)
			.build());
		cache.start();
		await(init, "the cache's initial load");
		List<String> initial = new ArrayList<>();
		events.drainTo(initial);
		Collections.sort(initial);
		eq(Arrays.asList("create " + p + " r", "create " + p + "/old o"), initial, "initial events");

		c.create().forPath(p + "/a", b("1"));
		expect(events, "create " + p + "/a 1");
		c.setData().forPath(p + "/a", b("2"));
		expect(events, "change " + p + "/a 1->2");
		c.create().forPath(p + "/a/b", b("x"));
		expect(events, "create " + p + "/a/b x");
		c.delete().forPath(p + "/a/b");
		expect(events, "delete " + p + "/a/b");
		c.delete().forPath(p + "/old");
		expect(events, "delete " + p + "/old");
		eq(2, (int) cache.stream().count(), "nodes in the cache");
		eq("2", s(cache.get(p + "/a").get().getData()), "cached data");
		cache.close();
	}

	static void expect(BlockingQueue<String> events, String want) throws InterruptedException {
		String got = events.poll(10, TimeUnit.SECONDS);
		eq(want, got, "next cache event");
	}

	static void childrenCache() throws Exception {
		CuratorFramework c = client();
		final String p = root + "/pcc";
		c.create().forPath(p);
		c.create().forPath(p + "/one", b("1"));
		BlockingQueue<String> events = new LinkedBlockingQueue<>();
		PathChildrenCache cache = new PathChildrenCache(c, p, true);
		cache.getListenable().addListener((cl, e) -> {
			if (e.getType() == PathChildrenCacheEvent.Type.INITIALIZED)
				events.add("INITIALIZED " + e.getInitialData().size());
			else if (e.getData() != null)
				events.add(e.getType() + " " + e.getData().getPath() + " " + s(e.getData().getData()));
		});
		cache.start(PathChildrenCache.StartMode.POST_INITIALIZED_EVENT);
		expect(events, "CHILD_ADDED " + p + "/one 1");
		expect(events, "INITIALIZED 1");
		c.create().forPath(p + "/two", b("2"));
		expect(events, "CHILD_ADDED " + p + "/two 2");
		c.setData().forPath(p + "/one", b("1b"));
		expect(events, "CHILD_UPDATED " + p + "/one 1b");
		c.delete().forPath(p + "/two");
		expect(events, "CHILD_REMOVED " + p + "/two 2");
		cache.close();
	}

	/* ---- sessions ----------------------------------------------------------------- */

	/*
	 * A PersistentNode (an ephemeral Curator keeps) whose session is closed by another
	 * connection to the same session: the holder's client sees LOST, makes a new session,
	 * and the node comes back owned by it.
	 */
	static void persistentNode() throws Exception {
		CuratorFramework c = client();
		final String p = root + "/pn";
		BlockingQueue<ConnectionState> states = new LinkedBlockingQueue<>();
		c.getConnectionStateListenable().addListener((cl, st) -> states.add(st));
		PersistentNode node = new PersistentNode(c, CreateMode.EPHEMERAL, false, p, b("here"));
		node.start();
		check(node.waitForInitialCreate(10, TimeUnit.SECONDS), "initial create");
		ZooKeeper zk = c.getZookeeperClient().getZooKeeper();
		long sid = zk.getSessionId();
		eq(sid, c.checkExists().forPath(p).getEphemeralOwner(), "the first owner");

		CountDownLatch up = new CountDownLatch(1);
		ZooKeeper thief = new ZooKeeper(connect, 10000, e -> {
			if (e.getState() == Watcher.Event.KeeperState.SyncConnected)
				up.countDown();
		}, sid, zk.getSessionPasswd());
		await(up, "the second connection to the session");
		eq(sid, thief.getSessionId(), "the same session");
		thief.close(); /* closes the session: its ephemeral goes */

		long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
		Stat st = null;
		while (System.nanoTime() < end) {
			ZooKeeper now = c.getZookeeperClient().getZooKeeper();
			if (now.getSessionId() != sid && now.getState().isConnected()) {
				st = c.checkExists().forPath(p);
				if (st != null && st.getEphemeralOwner() == now.getSessionId())
					break;
			}
			Thread.sleep(50);
		}
		check(st != null, "the node is back within 30 s");
		long newSid = c.getZookeeperClient().getZooKeeper().getSessionId();
		check(newSid != sid, "a new session");
		eq(newSid, st.getEphemeralOwner(), "the new owner");
		eq("here", s(c.getData().forPath(p)), "the node's data");
		check(states.contains(ConnectionState.LOST), "LOST reported; states " + states);
		node.close();
	}

	/*
	 * The server a client is on dies (test_curator.py kills it when told which): the
	 * client's session moves to another server with its lock, its ephemeral and its
	 * watch, and Curator reports SUSPENDED then RECONNECTED, never LOST. Driven from
	 * stdin: prints "on <port>", waits for a line, then checks.
	 */
	static void failover() throws Exception {
		CuratorFramework a = client();
		BlockingQueue<ConnectionState> states = new LinkedBlockingQueue<>();
		a.getConnectionStateListenable().addListener((cl, st) -> states.add(st));
		final String lockPath = root + "/lock";
		InterProcessMutex lock = new InterProcessMutex(a, lockPath);
		check(lock.acquire(10, TimeUnit.SECONDS), "the lock");
		String lockNode = a.getChildren().forPath(lockPath).get(0);
		a.create().withMode(CreateMode.EPHEMERAL).forPath(root + "/eph", b("a"));
		a.create().forPath(root + "/w", b("0"));
		BlockingQueue<String> fired = new LinkedBlockingQueue<>();
		a.getData().usingWatcher((Watcher) e -> {
			/* it also hears the connection's Disconnected and SyncConnected */
			if (e.getType() != Watcher.Event.EventType.None)
				fired.add(e.getType() + " " + e.getPath());
		}).forPath(root + "/w");
		ZooKeeper zk = a.getZookeeperClient().getZooKeeper();
		long sid = zk.getSessionId();
		String desc = zk.toString();
		int at = desc.indexOf("remoteserver:");
		check(at >= 0, "the server in " + desc);
		String remote = desc.substring(at).split("[ ,]")[0];
		System.out.println("on " + remote.substring(remote.lastIndexOf(':') + 1));
		System.out.flush();
		BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
		eq("killed", in.readLine(), "the driver's word");

		long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
		List<ConnectionState> seen = new ArrayList<>();
		while (!seen.contains(ConnectionState.RECONNECTED) && System.nanoTime() < end) {
			ConnectionState st = states.poll(100, TimeUnit.MILLISECONDS);
			if (st != null && !(st == ConnectionState.CONNECTED && seen.isEmpty()))
				seen.add(st); /* the first connection's CONNECTED may come late */
		}
		eq(Arrays.asList(ConnectionState.SUSPENDED, ConnectionState.RECONNECTED), seen,
		   "connection states after the kill");
		eq(sid, a.getZookeeperClient().getZooKeeper().getSessionId(), "the session id");
		check(lock.isAcquiredInThisProcess(), "the lock is still held");
		eq(Collections.singletonList(lockNode), a.getChildren().forPath(lockPath), "the lock's nodes");
		eq(sid, a.checkExists().forPath(lockPath + "/" + lockNode).getEphemeralOwner(), "the lock node's owner");
		eq(sid, a.checkExists().forPath(root + "/eph").getEphemeralOwner(), "the ephemeral's owner");

		CuratorFramework b = client();
		InterProcessMutex other = new InterProcessMutex(b, lockPath);
		check(!other.acquire(1, TimeUnit.SECONDS), "another client cannot take the lock");
		b.setData().forPath(root + "/w", b("1"));
		eq("NodeDataChanged " + root + "/w", fired.poll(10, TimeUnit.SECONDS), "the watch set before the move");
		lock.release();
		check(other.acquire(10, TimeUnit.SECONDS), "the lock, once released");
		other.release();
		eq(null, states.poll(), "further connection states");
	}

	/* ---- more recipes -------------------------------------------------------------- */

	static void treeCache() throws Exception {
		CuratorFramework c = client();
		final String p = root + "/tc";
		c.create().forPath(p, b("r"));
		c.create().forPath(p + "/x", b("x"));
		c.create().forPath(p + "/x/y", b("y"));
		BlockingQueue<String> events = new LinkedBlockingQueue<>();
		TreeCache cache = TreeCache.newBuilder(c, p).setMaxDepth(3).build();
		cache.getListenable().addListener((cl, e) -> {
			if (e.getType() == TreeCacheEvent.Type.INITIALIZED)
				events.add("INITIALIZED");
			else if (e.getData() != null)
				events.add(e.getType() + " " + e.getData().getPath() + " " + s(e.getData().getData()));
		});
		cache.start();
		List<String> initial = new ArrayList<>();
		for (String e = events.poll(10, TimeUnit.SECONDS); e != null && !e.equals("INITIALIZED");
		     e = events.poll(10, TimeUnit.SECONDS))
			initial.add(e);
		Collections.sort(initial);
		eq(Arrays.asList("NODE_ADDED " + p + " r", "NODE_ADDED " + p + "/x x", "NODE_ADDED " + p + "/x/y y"),
		   initial, "the initial nodes");
		c.create().forPath(p + "/x/y/z", b("z"));
		expect(events, "NODE_ADDED " + p + "/x/y/z z");
		c.setData().forPath(p + "/x", b("x2"));
		expect(events, "NODE_UPDATED " + p + "/x x2");
		c.delete().deletingChildrenIfNeeded().forPath(p + "/x/y");
		List<String> gone = new ArrayList<>();
		gone.add(events.poll(10, TimeUnit.SECONDS));
		gone.add(events.poll(10, TimeUnit.SECONDS));
		Collections.sort(gone, (a, b2) -> String.valueOf(a).compareTo(String.valueOf(b2)));
		eq(Arrays.asList("NODE_REMOVED " + p + "/x/y y", "NODE_REMOVED " + p + "/x/y/z z"), gone, "removals");
		eq("x2", s(cache.getCurrentData(p + "/x").getData()), "cached data");
		eq(Collections.emptyMap(), cache.getCurrentChildren(p + "/x"), "cached children of x");
		cache.close();
	}

	static void sharedCount() throws Exception {
		final String p = root + "/shared";
		SharedCount watcher = new SharedCount(client(), p, 0);
		BlockingQueue<Integer> seen = new LinkedBlockingQueue<>();
		watcher.addListener(new SharedCountListener() {
			public void countHasChanged(SharedCountReader r, int n) {
				seen.add(n);
			}

			public void stateChanged(CuratorFramework c, ConnectionState st) {
			}
		});
		watcher.start();
		parallel(4, (i, c) -> {
			SharedCount n = new SharedCount(c, p, 0);
			n.start();
			for (int k = 0; k < 10; k++) {
				while (!n.trySetCount(n.getVersionedValue(), n.getCount() + 1))
					;
			}
			n.close();
		});
		long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
		while (watcher.getCount() != 40 && System.nanoTime() < end)
			Thread.sleep(20);
		eq(40, watcher.getCount(), "the count a watcher sees");
		check(seen.contains(40), "the listener heard the last value");
		watcher.close();
	}

	static void selector() throws Exception {
		final String p = root + "/sel";
		AtomicInteger leading = new AtomicInteger();
		AtomicInteger maxLeading = new AtomicInteger();
		AtomicInteger turns = new AtomicInteger();
		CountDownLatch enough = new CountDownLatch(9);
		List<LeaderSelector> sels = new ArrayList<>();
		for (int i = 0; i < 3; i++) {
			LeaderSelector sel = new LeaderSelector(client(), p, new LeaderSelectorListenerAdapter() {
				public void takeLeadership(CuratorFramework c) throws Exception {
					int n = leading.incrementAndGet();
					maxLeading.accumulateAndGet(n, Math::max);
					turns.incrementAndGet();
					Thread.sleep(30);
					leading.decrementAndGet();
					enough.countDown();
				}
			});
			sel.setId("s" + i);
			sel.autoRequeue();
			sel.start();
			sels.add(sel);
		}
		await(enough, "nine turns of leadership");
		for (LeaderSelector sel : sels)
			sel.close();
		eq(1, maxLeading.get(), "leaders at once");
	}

	/* TTL nodes need ZooKeeper's extendedTypesEnabled, which the suite's servers do not set. */
	static void ttl() throws Exception {
		CuratorFramework c = client();
		try {
			c.create().withTtl(1000).withMode(CreateMode.PERSISTENT_WITH_TTL).forPath(root + "/ttl", b("t"));
			throw new AssertionError("a TTL node without extendedTypesEnabled was created");
		} catch (KeeperException e) {
			eq(KeeperException.Code.UNIMPLEMENTED, e.code(), "the answer to a TTL create");
		}
		eq(null, c.checkExists().forPath(root + "/ttl"), "the TTL node");
	}

	/*
	 * getConfig (ZooKeeper 3.5+), which Curator's EnsembleTracker reads and watches: a
	 * standalone server has none; an ensemble's lists its servers (with reconfig off,
	 * version=0), and the tracker then connects through every client address listed.
	 */
	static void config() throws Exception {
		CuratorFramework c = client();
		Stat st = new Stat();
		String cfg = s(c.getConfig().storingStatIn(st).forEnsemble());
		eq(0L, st.getMzxid(), "the config node's mzxid");
		if (cfg.isEmpty()) {
			eq(connect, c.getZookeeperClient().getCurrentConnectionString(), "the connection string");
			return;
		}
		List<String> lines = Arrays.asList(cfg.split("\n"));
		eq("version=0", lines.get(lines.size() - 1), "the config's last line");
		List<String> clientAddrs = new ArrayList<>();
		for (int i = 0; i < lines.size() - 1; i++) {
			String l = lines.get(i);
			check(l.matches("server\\.\\d+=[^:]+:\\d+:\\d+:participant;[^:]+:\\d+"), "config line " + l);
			clientAddrs.add(l.substring(l.indexOf(';') + 1));
		}
		Collections.sort(clientAddrs);
		for (String a : connect.split(","))
			check(clientAddrs.contains(a), a + " among the config's client addresses " + clientAddrs);
		long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(10);
		List<String> now;
		do {
			now = new ArrayList<>(Arrays.asList(c.getZookeeperClient().getCurrentConnectionString().split(",")));
			Collections.sort(now);
		} while (!now.equals(clientAddrs) && System.nanoTime() < end && sleep(20));
		eq(clientAddrs, now, "the connection string after the EnsembleTracker");
	}

	static boolean sleep(long ms) throws InterruptedException {
		Thread.sleep(ms);
		return true;
	}
}
