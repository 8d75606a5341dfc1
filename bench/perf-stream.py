#!/usr/bin/env python3
# Where each MB's milliseconds go while one producer streams into `spool serve`: reads the `perf record -e cpu-clock
# -F 2000 -g` files bench/budget.ts writes with SPOOL_BENCH_PERF=DIR (each beside a .json with the MB it took and
# the server's pid) and splits the server's samples into the parts of a chunk's path, in ms of CPU per MB streamed.
# A sample goes to the first part any frame of its chain matches, from the leaf up (a pwrite's kernel copy counts
# for the WAL write that made it, an interrupt's work for the interrupt), so the parts add up to the thread's CPU.
# The main thread (the event loop) is split part by part; the server's other threads (ckpt: the checkpoint worker,
# v8-platform: V8's GC and compiler helpers) are given whole, with their own largest parts.
# Usage: python3 bench/perf-stream.py DIR/label-1.data [DIR/label-2.data …]   (several files: the mean per MB)
import json
import re
import subprocess
import sys
from collections import Counter, defaultdict

PERIOD_MS = 1000 / 2000

# Parts named by native frames, in priority order: a sample goes to the first of them any frame of its chain matches
# (a pwrite's kernel copy counts for the WAL write that made it, a GC for the GC whatever allocated, an interrupt's
# work for the interrupt).
NATIVE = [
    ("kernel: interrupts and softirqs (disk I/O completions, timers) taken on this thread", r"^(handle_softirqs|blk_done_softirq|__irq_exit_rcu|irq_exit_rcu|asm_sysvec_\w+|asm_common_interrupt)$"),
    ("GC: scavenges (forced every 2 MB and V8's own), marking", r"(v8::internal::Heap::|Scavenger|ScavengeJob|MarkCompact|MinorMarkSweep|GarbageCollector|\(garbage collector\)|ArrayBufferSweeper)"),
    ("WAL frames: checksums (walChecksumBytes)", r"^walChecksumBytes$"),
    ("WAL frames: pwrite, the kernel's copy into the page cache and ext4", r"^(walWriteToLog|walWriteOneFrame|sqlite3WalFrames|pagerWalFrames)"),
    ("WAL locks and index (begin, end, wal-index hash)", r"^(walTryBeginRead|sqlite3WalBeginReadTransaction|sqlite3WalBeginWriteTransaction|sqlite3WalEndWriteTransaction|walIndex\w*|walHash\w*|unixShmLock|sqlite3PagerSharedLock|pager_end_transaction|walRestartLog)"),
    ("INSERT: b-tree cells, overflow pages, page cache", r"^(sqlite3BtreeInsert|fillInCell|insertCell\w*|balance\w*|allocateBtreePage|sqlite3PagerWrite|pager_write|pcache\w*|sqlite3Pcache\w*)"),
    ("SQLite: the rest of the statements (the counters' SELECT and UPDATE, VDBE, bind)", r"^(sqlite3\w*|Statement::\w+)"),
    ("newline count", r"countNewlines|FastIndexOfNumber"),
    ("socket reads (kernel: TCP receive, the copy out)", r"^(tcp_recvmsg\w*|sock_read_iter|sock_recvmsg)$"),
    ("acks: socket writes (kernel: TCP send, loopback delivery)", r"^(do_writev|tcp_sendmsg\w*|sock_write_iter)$"),
]
# Everything else goes by the innermost frame of Spool's or ws's JavaScript (perf-basic-prof's "JS:…" names), by its file.
SCRIPT = [
    ("ws: frame parsing and sending (ws/lib)", r"/ws/lib/"),
    ("binary frame decode and validation (zod)", r"(binary-frame|/zod/)"),
    ("RPC: dispatch, per-connection order, scheduler, reply", r"/rpc/"),
    ("stream method and lifecycle (features, core, protocol)", r"/(core|features|protocol)/"),
    ("store: group commit (JS)", r"/store/"),
    ("the forced scavenge's call (scavenger.js)", r"scavenger\.js"),
    ("server wiring (src/server: the transport's cork, message routing)", r"/server/"),
    ("Node's JavaScript (streams, events, timers, promises)", r"(node:|Builtins_|JS:)"),
]
COMPILED_NATIVE = [(name, re.compile(rx)) for name, rx in NATIVE]
COMPILED_SCRIPT = [(name, re.compile(rx)) for name, rx in SCRIPT]
NO_SCRIPT = "native runtime with no JavaScript frame (libuv, Node's C++, V8 outside GC)"


def samples(data):
    """Yields (tid, comm, [symbols leaf first]) for each sample of a perf.data file."""
    out = subprocess.run(["perf", "script", "-i", data, "-F", "comm,tid,ip,sym", "--no-inline"], capture_output=True, text=True, check=True).stdout
    head, frames = None, []
    for line in out.splitlines():
        if not line.strip():
            continue
        if not line.startswith("\t") and not line.startswith(" " * 8):
            if head:
                yield head[1], head[0], frames
            parts = line.split()
            head, frames = (" ".join(parts[:-1]), parts[-1]), []
        else:
            parts = line.strip().split(None, 1)
            frames.append(parts[1] if len(parts) > 1 else parts[0])
    if head:
        yield head[1], head[0], frames


def part_of(frames):
    for name, rx in COMPILED_NATIVE:
        if any(rx.search(frame) for frame in frames):
            return name
    # The innermost frame of Spool's or ws's code names the part (a promise job's builtins count for the code whose
    # promise it settles); a chain with only Node's own JavaScript goes to the last part.
    for frame in frames:
        for name, rx in COMPILED_SCRIPT[:-1]:
            if rx.search(frame):
                return name
    name, rx = COMPILED_SCRIPT[-1]
    return name if any(rx.search(frame) for frame in frames) else NO_SCRIPT


files = sys.argv[1:]
if not files:
    sys.exit(__doc__ or "usage: python3 bench/perf-stream.py DIR/label-1.data …")
main = Counter()
threads = defaultdict(Counter)
total_mb = 0.0
seconds = 0.0
for data in files:
    meta = json.load(open(data[: -len(".data")] + ".json"))
    total_mb += meta["mb"]
    seconds += meta["seconds"]
    pid = str(meta["pid"])
    for tid, comm, frames in samples(data):
        if tid == pid:
            main[part_of(frames)] += 1
        else:
            threads[comm][part_of(frames)] += 1

per_mb = lambda n: n * PERIOD_MS / total_mb  # noqa: E731
print(f"{len(files)} stream(s), {total_mb:.0f} MB in {seconds:.1f} s ({total_mb / seconds:.0f} MB/s); CPU ms per MB streamed")
print(f"main thread (event loop): {per_mb(sum(main.values())):.3f} ms/MB")
for name, n in main.most_common():
    print(f"  {per_mb(n):7.3f}  {100 * n / sum(main.values()):5.1f} %  {name}")
for comm, parts in sorted(threads.items(), key=lambda kv: -sum(kv[1].values())):
    n = sum(parts.values())
    top = ", ".join(f"{name.split(':')[0]} {per_mb(k):.3f}" for name, k in parts.most_common(3))
    print(f"{comm}: {per_mb(n):.3f} ms/MB (largest: {top})")
