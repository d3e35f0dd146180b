#!/usr/bin/env python3
"""The instruction mix of the loops in compiled functions.

Reads `objdump -d -C --no-show-raw-insn BINARY` output and, for every
function whose demangled name contains PATTERN, lists each loop (a backward
branch and the instructions it spans, of at least MIN instructions) with its
instructions sorted by kind: vector work that needs an execution port (the
512-bit ones run only on ports 0 and 5 of Intel's cores), loads, stores, and
the divider's square roots and divisions, which have their own, much lower
throughput (`examples/fill_profile.rs` measures it).

    objdump -d -C --no-show-raw-insn target/release/examples/fill_profile > /tmp/d.txt
    python3 scripts/loop_mix.py /tmp/d.txt 'avx512::fill'

A loop that contains another is listed too; the inner one is usually the
one that runs. Static counts, not a profile: which loop is hot, and how
often each branch is taken, comes from the timings.
"""

import collections
import re
import sys


def functions(lines, pattern):
    """(name, [(address, instruction text)]) for each matching function."""
    name, body = None, []
    for line in lines:
        head = re.match(r"^[0-9a-f]+ <(.*)>:$", line)
        if head:
            if name is not None and pattern in name:
                yield name, body
            name, body = head.group(1), []
            continue
        ins = re.match(r"^\s+([0-9a-f]+):\t(.*)$", line)
        if ins and name is not None:
            body.append((int(ins.group(1), 16), ins.group(2).strip()))
    if name is not None and pattern in name:
        yield name, body


def kind(text):
    op = text.split()[0]
    vector = "mm" in text
    if op.startswith(("vsqrt", "vdiv", "vrcp", "vrsqrt")):
        return "divider (sqrt/div)"
    if not vector:
        return "scalar"
    memory = "(" in text and ")" in text
    last = text.split(",")[-1] if "," in text else ""
    if memory and op.startswith("vmov") and "(" in last:
        return "vector store"
    if memory and (op.startswith(("vmov", "vbroadcast", "vpbroadcast"))):
        return "vector load"
    return "vector port"


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    path, pattern = sys.argv[1], sys.argv[2]
    minimum = int(sys.argv[3]) if len(sys.argv) > 3 else 20
    with open(path) as f:
        lines = f.read().splitlines()
    for name, body in functions(lines, pattern):
        index = {a: i for i, (a, _) in enumerate(body)}
        start = body[0][0] if body else 0
        print(f"{name} at {start:x}: {len(body)} instructions")
        for i, (a, text) in enumerate(body):
            m = re.match(r"(j\w+)\s+([0-9a-f]+)", text)
            if not m:
                continue
            target = int(m.group(2), 16)
            if target > a or target not in index:
                continue
            loop = body[index[target] : i + 1]
            if len(loop) < minimum:
                continue
            kinds = collections.Counter(kind(t) for _, t in loop)
            ops = collections.Counter(t.split()[0] for _, t in loop if "mm" in t)
            print(f"  loop {target:x}..{a:x}: {len(loop)} instructions: "
                  + ", ".join(f"{v} {k}" for k, v in sorted(kinds.items())))
            print("    " + ", ".join(f"{k} {v}" for k, v in ops.most_common()))


if __name__ == "__main__":
    main()
