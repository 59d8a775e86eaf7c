"""Helper of scripts/code-path.sh (see its header for what is measured).

Two roles in one file:
  * sourced by gdb (`gdb -x scripts/code_path.py --args edgemeter ingest ...`):
    sets a breakpoint on every function of edgemeter's own src/ and writes
    the calls, in hit order across threads, to $CP_TRACE;
  * run by python3 (`python3 scripts/code_path.py analyze --trace FILE ...`):
    cuts the path out of a trace and counts files, jumps, back-jumps and
    calls against the module direction.

Trace format (TSV): `#key<TAB>value` header lines, then
  F <id> <file> <line> <name>       one per function of src/ that was hit
  H <seq> <thread> <id> <caller-id> one per call, in hit order; caller-id is
                                    the nearest edgemeter frame up the stack,
                                    -1 if there is none (a thread's root)
"""

import os
import re
import sys

try:
    import gdb  # only inside gdb
except ImportError:
    gdb = None

HASH = re.compile(r"::h[0-9a-f]{16}$")
CRATE = re.compile(r"\bedgemeter::")


# --------------------------------------------------------------------------
# Tracing (inside gdb)
# --------------------------------------------------------------------------

def _load_base(binary):
    """Where the executable is mapped (0 for a non-PIE executable)."""
    with open(binary, "rb") as fh:
        e_type = int.from_bytes(fh.read(18)[16:18], "little")
    if e_type != 3:  # ET_DYN: position-independent
        return 0
    pid = gdb.selected_inferior().pid
    real = os.path.realpath(binary)
    starts = []
    with open("/proc/%d/maps" % pid) as maps:
        for line in maps:
            parts = line.split()
            if len(parts) >= 6 and parts[-1] == real:
                starts.append(int(parts[0].split("-")[0], 16))
    if not starts:
        raise RuntimeError("cannot find %s in /proc/%d/maps" % (real, pid))
    return min(starts)


def _edgemeter_functions(binary, base):
    """(address, size, name, file, line) of every function whose name is in
    the edgemeter crate and whose first instruction's line is in a relative
    `src/` file (cargo names the package's own files relative; dependencies'
    and the standard library's monomorphised code have absolute paths or
    /rustc/ paths, and drop glue and allocator shims are filtered by name)."""
    import subprocess
    out = subprocess.run(["nm", "-C", "-S", "--defined-only", binary],
                         capture_output=True, text=True, check=True).stdout
    seen = {}
    for line in out.splitlines():
        parts = line.split(" ", 3)
        if len(parts) != 4 or parts[2] not in "tTwW" or not CRATE.search(parts[3]):
            continue
        seen.setdefault(int(parts[0], 16), (int(parts[1], 16), HASH.sub("", parts[3])))
    funcs = []
    for addr, (size, name) in sorted(seen.items()):
        sal = gdb.find_pc_line(addr + base)
        if sal.symtab is None:
            continue
        fname = sal.symtab.filename
        if fname.startswith("src/") and fname.endswith(".rs"):
            funcs.append((addr + base, max(size, 1), name, fname, sal.line))
    return funcs


def trace():
    import bisect
    import json

    binary = os.environ["CP_BINARY"]
    out_path = os.environ["CP_TRACE"]
    delta_log = os.environ.get("CP_DELTA_LOG", "")
    start_re = re.compile(os.environ.get("CP_FROM", r"^edgemeter::cli::run$"))

    for cmd in ("set pagination off", "set confirm off", "set print thread-events off",
                "set print inferior-events off", "set startup-with-shell off",
                # Without this gdb takes every breakpoint out of memory and puts
                # it back at each stop: thousands of writes per hit.
                "set breakpoint always-inserted on"):
        gdb.execute(cmd, to_string=True)
    for sig in ("SIGPIPE", "SIGUSR1", "SIGUSR2", "SIGALRM", "SIGCHLD", "SIGWINCH", "SIGURG"):
        gdb.execute("handle %s nostop noprint pass" % sig, to_string=True)
    gdb.execute("starti", to_string=True)  # mapped, nothing run yet

    funcs = _edgemeter_functions(binary, _load_base(binary))
    if not funcs:
        raise RuntimeError("no function of edgemeter's src/ has line information in %s "
                           "(built with debug = 0?)" % binary)
    starts = [f[0] for f in funcs]

    def func_at(pc):
        i = bisect.bisect_right(starts, pc) - 1
        if i >= 0 and pc < funcs[i][0] + funcs[i][1]:
            return i
        return -1

    def edgemeter_frames(limit):
        """Function ids of edgemeter frames above the newest one, nearest first."""
        found = []
        try:
            frame = gdb.newest_frame().older()
            depth = 0
            while frame is not None and depth < 512 and len(found) < limit:
                i = func_at(frame.pc() - 1)  # pc is a return address
                if i >= 0:
                    found.append(i)
                frame = frame.older()
                depth += 1
        except gdb.error:
            pass
        return found

    hits = []
    state = {"commit": None, "outer": None, "checked": set()}

    def data_commit_on_disk():
        """True once a commit adding a data file is in the table's _delta_log."""
        try:
            names = os.listdir(delta_log)
        except OSError:
            return False
        for name in sorted(names):
            if not name.endswith(".json") or name in state["checked"]:
                continue
            try:
                with open(os.path.join(delta_log, name)) as fh:
                    actions = [json.loads(l) for l in fh if l.strip()]
            except (OSError, ValueError):
                continue  # being written: look again at the next hit
            state["checked"].add(name)
            if any("add" in a for a in actions):
                return True
        return False

    class Entry(gdb.Breakpoint):
        def stop(self):
            seq = len(hits)
            if state["outer"] is None and start_re.search(funcs[self.fid][2]):
                chain = edgemeter_frames(10 ** 6)
                state["outer"] = chain
                caller = chain[0] if chain else -1
            else:
                chain = edgemeter_frames(1)
                caller = chain[0] if chain else -1
            hits.append((self.fid, gdb.selected_thread().num, caller))
            if state["commit"] is None and delta_log and data_commit_on_disk():
                state["commit"] = seq
            return False  # record and go on

    for fid, f in enumerate(funcs):
        bp = Entry("*0x%x" % f[0], internal=True)
        bp.silent = True
        bp.fid = fid

    gdb.execute("continue", to_string=True)
    try:
        exit_code = int(gdb.parse_and_eval("$_exitcode"))
    except (gdb.error, ValueError):
        exit_code = None
    try:
        signal = str(gdb.parse_and_eval("$_exitsignal"))
    except gdb.error:
        signal = "void"

    used = sorted({h[0] for h in hits} | {h[2] for h in hits if h[2] >= 0}
                  | set(state["outer"] or []))
    with open(out_path, "w") as out:
        out.write("#binary\t%s\n" % binary)
        out.write("#functions\t%d\n" % len(funcs))
        out.write("#exit\t%s\n" % (exit_code if exit_code is not None else "signal " + signal))
        out.write("#commit\t%s\n" % ("" if state["commit"] is None else state["commit"]))
        out.write("#outer\t%s\n" % " ".join(str(i) for i in (state["outer"] or [])))
        for fid in used:
            _, _, name, fname, line = funcs[fid]
            out.write("F\t%d\t%s\t%d\t%s\n" % (fid, fname, line, name))
        for seq, (fid, thread, caller) in enumerate(hits):
            out.write("H\t%d\t%d\t%d\t%d\n" % (seq, thread, fid, caller))


# --------------------------------------------------------------------------
# Analysis (python3)
# --------------------------------------------------------------------------

DEFAULT_ORDER = "cli,config,main,ingest source format key lake query export"


def read_trace(path):
    meta, funcs, hits = {}, {}, []
    with open(path) as fh:
        for line in fh:
            parts = line.rstrip("\n").split("\t")
            if parts[0].startswith("#"):
                meta[parts[0][1:]] = parts[1] if len(parts) > 1 else ""
            elif parts[0] == "F":
                funcs[int(parts[1])] = (parts[2], int(parts[3]), parts[4])
            elif parts[0] == "H":
                hits.append((int(parts[3]), int(parts[2]), int(parts[4])))
    return meta, funcs, hits


def module_of(fname):
    rel = fname[len("src/"):] if fname.startswith("src/") else fname
    return rel.split("/")[0][:-3] if "/" not in rel else rel.split("/")[0]


def ranks_from(spec):
    ranks = {}
    for rank, group in enumerate(spec.split()):
        for module in group.split(","):
            ranks[module] = rank
    return ranks


def count_jumps(files):
    jumps = back = 0
    visited = set(files[:1])
    for prev, cur in zip(files, files[1:]):
        if cur != prev:
            jumps += 1
            if cur in visited:
                back += 1
        visited.add(cur)
    return jumps, back


def short(name):
    return name[len("edgemeter::"):] if name.startswith("edgemeter::") else name


def analyze(argv):
    import argparse
    ap = argparse.ArgumentParser(prog="code_path.py analyze")
    ap.add_argument("--trace", required=True)
    ap.add_argument("--repo", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    ap.add_argument("--from", dest="start", default=r"^edgemeter::cli::run$")
    ap.add_argument("--until", choices=("commit", "exit"), default="commit")
    ap.add_argument("--order", default=DEFAULT_ORDER)
    ap.add_argument("--skip-derived", action="store_true",
                    help="leave out code expanded from #[derive(...)] (Clone, Default, serde...)")
    ap.add_argument("-v", "--verbose", action="count", default=0)
    args = ap.parse_args(argv)

    meta, funcs, hits = read_trace(args.trace)
    ranks = ranks_from(args.order)
    start_re = re.compile(args.start)
    start = next((i for i, h in enumerate(hits) if start_re.search(funcs[h[0]][2])), None)
    if start is None:
        sys.exit("code-path: no call of a function matching %r (--from)" % args.start)
    if args.until == "commit":
        if not meta.get("commit"):
            sys.exit("code-path: no commit adding a data file was seen in the table's "
                     "_delta_log during the run (use --until exit)")
        end = int(meta["commit"])
    else:
        end = len(hits)
    outer = {int(x) for x in meta.get("outer", "").split()}

    key = lambda fid: (funcs[fid][0], funcs[fid][1], funcs[fid][2])  # one per source function
    file_of = lambda fid: funcs[fid][0]

    sources = {}

    def source_line(fname, line):
        if fname not in sources:
            try:
                with open(os.path.join(args.repo, fname)) as fh:
                    sources[fname] = fh.read().split("\n")
            except OSError:
                sources[fname] = []
        text = sources[fname]
        return text[line - 1] if 0 < line <= len(text) else ""

    derived = {fid for fid, (fname, line, _) in funcs.items()
               if args.skip_derived and "derive(" in source_line(fname, line)}

    # The callers of the entry function (main's future, re-polled by the
    # runtime) are above the path: their re-entries are not on it.
    window = [(seq, h) for seq, h in enumerate(hits[start:end], start)
              if h[0] not in outer and h[0] not in derived]
    outer_keys = {key(f) for f in outer}
    seen, first = set(outer_keys), []
    for seq, h in window:
        k = key(h[0])
        if k not in seen:
            seen.add(k)
            first.append((seq, h))

    def rank_of(fid):
        return ranks.get(module_of(file_of(fid)))

    def against(h):
        fid, _, caller = h
        if caller < 0 or file_of(caller) == file_of(fid):
            return False
        rc, re_ = rank_of(caller), rank_of(fid)
        return rc is not None and re_ is not None and re_ < rc

    def with_returns(view):
        seq = []
        for _, (fid, _, caller) in view:
            if seq and caller >= 0 and seq[-1] != file_of(caller):
                seq.append(file_of(caller))  # back in the caller's file first
            seq.append(file_of(fid))
        return seq

    stats = {}
    for name, view in (("first calls", first), ("all calls", window)):
        files = [file_of(h[0]) for _, h in view]
        stats[name] = dict(
            calls=len(view), files=len(set(files)), jumps=count_jumps(files),
            ret=count_jumps(with_returns(view)),
            against=sum(1 for _, h in view if against(h)))

    total_src = 0
    for _, _, names in os.walk(os.path.join(args.repo, "src")):
        total_src += sum(1 for n in names if n.endswith(".rs"))
    threads = sorted({h[1] for _, h in window})
    first_files = []
    for _, h in first:
        if file_of(h[0]) not in first_files:
            first_files.append(file_of(h[0]))

    until = ("the Delta commit of the row (first data commit in the table's _delta_log)"
             if args.until == "commit" else "the end of the process")
    print("path: first call of %s .. %s" % (args.start, until))
    print("      calls #%d..#%d of the %d recorded; %d thread(s); breakpoints on %d functions of src/"
          % (start, end - 1, len(hits), len(threads), int(meta.get("functions", 0))))
    if meta.get("exit") not in ("0", None):
        print("      note: edgemeter exited with %s" % meta.get("exit"))
    print()
    functions = len({key(h[0]) for _, h in window})
    print("%-12s %9s %6s %7s %6s %11s %18s   %s" % (
        "", "functions", "calls", "files", "jumps", "back-jumps", "against-direction",
        "with returns: jumps/back-jumps"))
    for name in ("first calls", "all calls"):
        s = stats[name]
        print("%-12s %9d %6d %7s %6d %11d %18d   %d/%d" % (
            name, functions, s["calls"], "%d/%d" % (s["files"], total_src),
            s["jumps"][0], s["jumps"][1], s["against"], s["ret"][0], s["ret"][1]))
    print()
    print("files in order of first visit: " + " ".join(f[len("src/"):] for f in first_files))

    pairs = {}
    for _, h in window:
        if against(h):
            p = (h[2], h[0])
            pairs[p] = pairs.get(p, 0) + 1
    print()
    print("calls against the direction %s (caller module later than callee's; "
          "%d distinct, calls in all):" % (" > ".join(args.order.split()), len(pairs)))
    if not pairs:
        print("  none")
    for (caller, callee), n in sorted(pairs.items(), key=lambda kv: (file_of(kv[0][0]), kv[0])):
        print("  %5d  %s %s -> %s %s" % (n, file_of(caller)[4:], short(funcs[caller][2]),
                                          file_of(callee)[4:], short(funcs[callee][2])))
    unranked = sorted({module_of(file_of(h[0])) for _, h in window} - set(ranks))
    if unranked:
        print("  (modules outside the order, not judged: %s)" % ", ".join(unranked))

    # A stale binary: a function's recorded line no longer names it.
    stale = []
    for fid in {h[0] for _, h in window}:
        fname, line, name = funcs[fid]
        last = name.split("::")[-1]
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", last) or "<" in name or "{" in name:
            continue
        if not os.path.exists(os.path.join(args.repo, fname)):
            stale.append("%s (file gone)" % fname)
            continue
        near = " ".join(source_line(fname, n) for n in (line - 1, line, line + 1))
        if not re.search(r"\b%s\b" % re.escape(last), near):
            stale.append("%s:%d %s" % (fname, line, short(name)))
    if stale:
        print()
        print("warning: %d functions are not at the line the binary says (stale build?), e.g. %s"
              % (len(stale), "; ".join(sorted(stale)[:3])))

    if args.verbose:
        view = first if args.verbose == 1 else window
        print()
        print("sequence (%s; '>' a jump, '<' a back-jump, '!' a call against the direction):"
              % ("first calls" if args.verbose == 1 else "all calls"))
        prev, visited = None, set()
        for seq, h in view:
            fname = file_of(h[0])
            mark = " "
            if prev is not None and fname != prev:
                mark = "<" if fname in visited else ">"
            if against(h):
                mark += "!"
            caller = short(funcs[h[2]][2]) if h[2] >= 0 else "-"
            print("%6d t%-2d %-2s %-24s %-60s <- %s" % (
                seq, h[1], mark, "%s:%d" % (fname[4:], funcs[h[0]][1]), short(funcs[h[0]][2]),
                caller))
            visited.add(fname)
            prev = fname
    return 0


if gdb is not None:
    try:
        trace()
    except Exception as e:  # gdb -batch would only print it and go on
        sys.stderr.write("code_path.py: %s: %s\n" % (type(e).__name__, e))
        try:
            gdb.execute("kill", to_string=True)
        except gdb.error:
            pass
        os._exit(1)
elif __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] != "analyze":
        sys.exit("usage: python3 code_path.py analyze --trace FILE [...] (tracing runs inside gdb)")
    import signal
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `... | head`
    sys.exit(analyze(sys.argv[2:]))
