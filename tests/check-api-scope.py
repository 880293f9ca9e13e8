#!/usr/bin/env python3
"""Every public function (declared FXP_API in include/) that calls library
code able to raise an error (FXP_ERR / fxp__err, directly or through other
calls), or calls through a function pointer, opens with FXP_API_SCOPE(): its
error messages then name it, never an internal helper or another public
function it used (src/core/internal.h).  A static scan of src/**/*.c:
function bodies are the lines between a definition's "{" and the next "}"
in column 0 (the code style).  Usage: check-api-scope.py SOURCE_ROOT"""
import glob
import os
import re
import sys

root = sys.argv[1]
public = set()
for h in glob.glob(os.path.join(root, "include", "**", "*.h"), recursive=True):
    public |= set(re.findall(r"FXP_API[^;{]*?\b(fxp_[a-z]\w*)\s*\(", open(h).read(), re.S))


def strip(code):
    """Remove comments and string and character literals."""
    code = re.sub(r"/\*.*?\*/", " ", code, flags=re.S)
    code = re.sub(r'"(\\.|[^"\\])*"', '""', code)
    return re.sub(r"'(\\.|[^'\\])*'", "''", code)


DEF = re.compile(r"^(?!typedef|#|\s)[A-Za-z_][\w \*]*?\b(\w+)\s*\(")
funcs = {}  # name -> (path, line, body)
for path in sorted(glob.glob(os.path.join(root, "src", "**", "*.c"), recursive=True)):
    lines = open(path).read().split("\n")
    i = 0
    while i < len(lines):
        m = DEF.match(lines[i])
        if not m or lines[i].rstrip().endswith(";"):
            i += 1
            continue
        if "{" in lines[i] and lines[i].rstrip().endswith("}"):  # one-line body
            funcs[m.group(1)] = (path, i + 1, strip(lines[i].split("{", 1)[1]))
            i += 1
            continue
        j = i
        while j < len(lines) and lines[j] != "{" and not lines[j].rstrip().endswith(";"):
            j += 1
        if j >= len(lines) or lines[j] != "{":
            i += 1
            continue
        k = j
        while k < len(lines) and lines[k] != "}":
            k += 1
        funcs[m.group(1)] = (path, i + 1, strip("\n".join(lines[j + 1:k])))
        i = k + 1

calls = {n: set(re.findall(r"\b([A-Za-z_]\w*)\s*\(", b)) for n, (_, _, b) in funcs.items()}
INDIRECT = re.compile(r"->\s*\w+\s*\(|\(\s*\*\s*\w+\s*\)\s*\(")
raisers = {n for n, (_, _, b) in funcs.items() if re.search(r"\bFXP_ERR\s*\(|\bfxp__err\s*\(", b)}
changed = True
while changed:
    changed = False
    for n, c in calls.items():
        if n not in raisers and ((c - {n}) & raisers or INDIRECT.search(funcs[n][2])):
            raisers.add(n)
            changed = True

missing = []
checked = 0
for n in sorted(public & set(funcs)):
    path, line, body = funcs[n]
    checked += 1
    inner = (calls[n] - {n}) & raisers
    if not (inner or INDIRECT.search(body)) or body.lstrip().startswith("FXP_API_SCOPE();"):
        continue
    what = ", ".join(sorted(inner)[:3]) or "a function pointer"
    missing.append("%s:%d: %s calls %s (which can raise an error) but does not open with "
                   "FXP_API_SCOPE()" % (os.path.relpath(path, root), line, n, what))
for m in missing:
    print(m)
if missing:
    sys.exit("%d public function(s) without FXP_API_SCOPE()" % len(missing))
print("%d public function definitions checked: every one that calls code able to raise an "
      "error opens with FXP_API_SCOPE()" % checked)
