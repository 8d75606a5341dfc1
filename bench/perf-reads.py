#!/usr/bin/env python3
# Splits a `perf record -e cpu-clock -g -k monotonic` of the server (bench/first-read.ts with SPOOL_BENCH_PERF=DIR)
# by read: the main thread's samples inside each read's window (the client's start → answer, on the same clock),
# grouped into the first tail and slice after the burst (`first`), and the later ones (`later`), summed over every
# DIR/*.data given. Per group: ms of the main thread's CPU per read (a sample is 1/20000 s), what share of it is
# in each part of the path (a sample counts for a part when any frame of its call chain matches, so the parts
# overlap), and the leaf functions. Other threads' samples during the reads are listed by thread name.
# Usage: python3 bench/perf-reads.py DIR/label-0.data [DIR/label-1.data …]
import json
import re
import subprocess
import sys
from collections import Counter, defaultdict

PERIOD_MS = 1000 / 20000

# Parts of a read, each a regular expression over "symbol (dso)" of any frame in a sample's chain.
PARTS = [
    ("sqlite (better-sqlite3 and SQLite)", r"better_sqlite3"),
    ("  sqlite: prepare/bind/step overhead", r"Statement::JS_|sqlite3_step"),
    ("  sqlite: WAL frame lookup (walFindFrame, wal-index hash)", r"walFindFrame|sqlite3WalFindFrame|walHash|walIndexPage|walFramePgno"),
    ("  sqlite: begin read (walTryBeginRead, shared lock)", r"walTryBeginRead|sqlite3WalBeginReadTransaction|sqlite3PagerSharedLock|walIndexReadHdr|pagerBeginReadTransaction"),
    ("  sqlite: page read from a file (readDbPage, pread)", r"readDbPage|sqlite3WalReadFrame|unixRead|pread"),
    ("  sqlite: page cache (pcache)", r"pcache1|sqlite3PcacheFetch|sqlite3PcacheRelease|pcacheManage"),
    ("  sqlite: overflow pages (a chunk's blob)", r"accessPayload|getOverflowPage|vdbeColumnFromOverflow|copyPayload"),
    ("  sqlite: btree seek", r"sqlite3BtreeIndexMoveto|sqlite3BtreeTableMoveto|moveToChild|getAndInitPage|btreeInitPage"),
    ("kernel", r"\[kernel\.kallsyms\]"),
    ("  kernel: page faults", r"asm_exc_page_fault|exc_page_fault|handle_mm_fault"),
    ("  kernel: pread/read of a file", r"ksys_pread64|filemap_read|generic_file_read_iter|ext4_file_read_iter"),
    ("  kernel: socket write", r"tcp_sendmsg|sock_write_iter|do_writev"),
    ("  kernel: socket read", r"tcp_recvmsg|sock_read_iter"),
    ("v8: compile (lazy parse, bytecode, optimize)", r"v8::internal::Compiler|v8::internal::Parser|BytecodeGenerator|v8::internal::maglev|v8::internal::compiler::|Runtime_CompileLazy|Runtime_CompileOptimized|Runtime_InstallBaselineCode|v8::internal::baseline"),
    ("v8: GC", r"v8::internal::Heap::|Scavenger|MarkCompact|v8::internal::MinorMarkSweep|Runtime_AllocateIn"),
    ("v8: IC misses / runtime", r"Runtime_.*IC_Miss|Runtime_KeyedLoadIC|Runtime_StoreIC|v8::internal::IC::"),
    ("v8: deopt", r"Deoptimizer|Runtime_NotifyDeoptimized"),
    ("JS (JIT'd or interpreted frames at the leaf)", None),
    ("libc malloc/free", r"\b(malloc|free|_int_malloc|_int_free|calloc|realloc|cfree|malloc_consolidate)\b"),
    ("libc memcpy/memmove/memset", r"__memmove|__memcpy|__memset"),
]
COMPILED = [(name, re.compile(rx) if rx else None) for name, rx in PARTS]
JS_FRAME = re.compile(r"perf-\d+\.map")
JS_LEAF = re.compile(r"^(JS:|LazyCompile:|Function:|Builtin:|Builtins_|InterpretedFunction:|BytecodeHandler:)|perf-\d+\.map")


def samples(path):
    """(tid, comm, time s, [frame text, leaf first]) of each sample."""
    out = subprocess.run(
        ["perf", "script", "-i", path, "-F", "comm,tid,time,ip,sym,dso", "--ns"], capture_output=True, text=True, check=False
    ).stdout
    head = re.compile(r"^\s*(.+?)\s+(\d+)\s+([\d.]+):\s*$")
    current = None
    for line in out.splitlines():
        if not line.strip():
            if current:
                yield current
            current = None
            continue
        m = head.match(line)
        if m and not line.startswith("\t"):
            if current:
                yield current
            current = (int(m.group(2)), m.group(1), float(m.group(3)), [])
            continue
        if current:
            parts = line.strip().split(" ", 1)
            current[3].append(parts[1] if len(parts) > 1 else parts[0])
    if current:
        yield current


def group_of(read, index):
    """The first tail and the first slice after the burst, against the later reads of the same kind."""
    return f"{read['kind']} {'first' if index < 2 else 'later'}"


def main(paths):
    per_group = defaultdict(lambda: {"reads": 0, "samples": 0, "parts": Counter(), "leaf": Counter(), "others": Counter(), "js": Counter()})
    per_read = []
    for path in paths:
        meta = json.load(open(path.replace(".data", ".reads.json")))
        pid = meta["pid"]
        reads = meta["reads"]
        counts = [Counter() for _ in reads]
        others = [Counter() for _ in reads]
        leafs = [Counter() for _ in reads]
        js = [Counter() for _ in reads]
        for tid, comm, t, frames in samples(path):
            for index, r in enumerate(reads):
                if r["start"] <= t <= r["end"]:
                    break
            else:
                continue
            if tid != pid:
                others[index][comm] += 1
                continue
            counts[index]["total"] += 1
            text = " | ".join(frames)
            for name, rx in COMPILED:
                if rx is None:
                    if frames and JS_LEAF.search(frames[0]):
                        counts[index][name] += 1
                elif rx.search(text):
                    counts[index][name] += 1
            leafs[index][frames[0] if frames else "?"] += 1
            # Inclusive: each JavaScript function (named through --perf-basic-prof) once per sample.
            js[index].update({re.sub(r"\s*\(/tmp/perf-\d+\.map\)$", "", f) for f in frames if JS_FRAME.search(f)})
        for index, r in enumerate(reads):
            g = per_group[group_of(r, index)]
            g["reads"] += 1
            g["samples"] += counts[index]["total"]
            g["parts"].update(counts[index])
            g["leaf"].update(leafs[index])
            g["others"].update(others[index])
            g["js"].update(js[index])
            per_read.append((path, index, r, counts[index]["total"] * PERIOD_MS, (r["end"] - r["start"]) * 1000, dict(others[index])))
    for path, index, r, cpu, wall, oth in per_read:
        if index < 4:
            print(f"{path} {r['kind']}{r['i']}: wall {wall:.2f} ms, main thread sampled {cpu:.2f} ms, other threads {({k: round(v * PERIOD_MS, 2) for k, v in oth.items()})}")
    for name in ("tail first", "tail later", "slice first", "slice later"):
        g = per_group[name]
        if not g["reads"]:
            continue
        n = g["reads"]
        print(f"\n== {name}: {n} reads, main thread {g['samples'] * PERIOD_MS / n:.2f} ms CPU a read (sampled)")
        for part, _ in PARTS:
            c = g["parts"][part]
            print(f"  {part:62s} {c * PERIOD_MS / n:6.3f} ms a read  {100 * c / max(1, g['samples']):5.1f} %")
        print("  leaf functions (ms a read):")
        for leaf, c in g["leaf"].most_common(25):
            print(f"    {c * PERIOD_MS / n:6.3f}  {leaf[:120]}")
        print("  JavaScript functions, inclusive (ms a read):")
        for f, c in g["js"].most_common(40):
            print(f"    {c * PERIOD_MS / n:6.3f}  {f[:140]}")
        print(f"  other threads during these reads (ms a read): { {k: round(v * PERIOD_MS / n, 3) for k, v in g['others'].items()} }")


if __name__ == "__main__":
    main(sys.argv[1:])
