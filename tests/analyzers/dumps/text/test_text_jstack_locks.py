"""jstack -l output with java.util.concurrent locks (made with OpenJDK 17's jstack for these
tests from a two-thread ReentrantLock ABBA program, trimmed to the two threads)."""

from __future__ import annotations

from backline.analyzers.dumps.text import parse_text_crash_text

JSTACK_L = '2026-11-27 10:28:55\nFull thread dump OpenJDK 64-Bit Server VM (17.0.15+6-Debian-1deb12u1 mixed mode, sharing):\n\n"lock-ab" #12 prio=5 os_prio=0 cpu=0.44ms elapsed=2.34s tid=0x00007fa86c118e40 nid=0x2162 waiting on condition  [0x00007fa83cd27000]\n   java.lang.Thread.State: WAITING (parking)\n\tat jdk.internal.misc.Unsafe.park(java.base@17.0.15/Native Method)\n\t- parking to wait for  <0x000000069ec19558> (a java.util.concurrent.locks.ReentrantLock$NonfairSync)\n\tat java.util.concurrent.locks.LockSupport.park(java.base@17.0.15/LockSupport.java:211)\n\tat java.util.concurrent.locks.AbstractQueuedSynchronizer.acquire(java.base@17.0.15/AbstractQueuedSynchronizer.java:715)\n\tat java.util.concurrent.locks.AbstractQueuedSynchronizer.acquire(java.base@17.0.15/AbstractQueuedSynchronizer.java:938)\n\tat java.util.concurrent.locks.ReentrantLock$Sync.lock(java.base@17.0.15/ReentrantLock.java:153)\n\tat java.util.concurrent.locks.ReentrantLock.lock(java.base@17.0.15/ReentrantLock.java:322)\n\tat LockDeadlock.take(LockDeadlock.java:6)\n\tat LockDeadlock.lambda$main$0(LockDeadlock.java:10)\n\tat LockDeadlock$$Lambda$1/0x00007fa7f0000a08.run(Unknown Source)\n\tat java.lang.Thread.run(java.base@17.0.15/Thread.java:840)\n\n   Locked ownable synchronizers:\n\t- <0x000000069ec19528> (a java.util.concurrent.locks.ReentrantLock$NonfairSync)\n\n"lock-ba" #13 prio=5 os_prio=0 cpu=0.07ms elapsed=2.34s tid=0x00007fa86c119df0 nid=0x2163 waiting on condition  [0x00007fa83cc27000]\n   java.lang.Thread.State: WAITING (parking)\n\tat jdk.internal.misc.Unsafe.park(java.base@17.0.15/Native Method)\n\t- parking to wait for  <0x000000069ec19528> (a java.util.concurrent.locks.ReentrantLock$NonfairSync)\n\tat java.util.concurrent.locks.LockSupport.park(java.base@17.0.15/LockSupport.java:211)\n\tat java.util.concurrent.locks.AbstractQueuedSynchronizer.acquire(java.base@17.0.15/AbstractQueuedSynchronizer.java:715)\n\tat java.util.concurrent.locks.AbstractQueuedSynchronizer.acquire(java.base@17.0.15/AbstractQueuedSynchronizer.java:938)\n\tat java.util.concurrent.locks.ReentrantLock$Sync.lock(java.base@17.0.15/ReentrantLock.java:153)\n\tat java.util.concurrent.locks.ReentrantLock.lock(java.base@17.0.15/ReentrantLock.java:322)\n\tat LockDeadlock.take(LockDeadlock.java:6)\n\tat LockDeadlock.lambda$main$1(LockDeadlock.java:11)\n\tat LockDeadlock$$Lambda$2/0x00007fa7f0000c28.run(Unknown Source)\n\tat java.lang.Thread.run(java.base@17.0.15/Thread.java:840)\n\n   Locked ownable synchronizers:\n\t- <0x000000069ec19558> (a java.util.concurrent.locks.ReentrantLock$NonfairSync)\n\nFound one Java-level deadlock:\n=============================\n"lock-ab":\n  waiting for ownable synchronizer 0x000000069ec19558, (a java.util.concurrent.locks.ReentrantLock$NonfairSync),\n  which is held by "lock-ba"\n\n"lock-ba":\n  waiting for ownable synchronizer 0x000000069ec19528, (a java.util.concurrent.locks.ReentrantLock$NonfairSync),\n  which is held by "lock-ab"'


def test_reentrant_lock_deadlock_from_ownable_synchronizers():
    [rep] = parse_text_crash_text(JSTACK_L)
    assert rep.source_format == "jstack"
    names = {t.id: t.name for t in rep.threads}
    assert [sorted(names[t] for t in d.threads) for d in rep.deadlocks] == [["lock-ab", "lock-ba"]]
    ab = next(t for t in rep.threads if t.name == "lock-ab")
    assert ab.wait.kind == "lock" and ab.wait.resource == "lock:<0x000000069ec19558>"
    assert ab.holds == ("lock:<0x000000069ec19528>",)
    assert len(ab.frames) == 10 and ab.state == "WAITING"
    lam = ab.frames[8]
    assert (lam.module, lam.function, lam.file) == (None, "LockDeadlock$$Lambda$1/0x00007fa7f0000a08.run", None)
    assert ab.frames[0].module == "java.base@17.0.15" and ab.frames[0].file is None
    assert rep.extra["jvm_deadlocks"] == [["lock-ab", "lock-ba"]]


def test_parking_without_an_owner_is_no_deadlock():
    text = JSTACK_L.replace("Locked ownable synchronizers:\n\t- <0x000000069ec19558>", "Locked ownable synchronizers:\n\t- None")
    text = text.split("Found one")[0]
    [rep] = parse_text_crash_text(text)
    assert rep.deadlocks == () and rep.problem_class == "HANG"
