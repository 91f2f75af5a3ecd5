"""ncu's raw CSV (gpu__time_duration.sum per kernel, ns) -> a markdown table: each
kernel's calls, total and mean time, largest first, then the first 40 kernels in
launch order (one decode step starts with the embedding gather)."""
import collections
import csv
import sys

for path in sys.argv[1:]:
    rows = [r for r in csv.reader(open(path)) if len(r) > 5]
    head = rows[0]
    name, dur = head.index('Kernel Name'), head.index('gpu__time_duration.sum')
    ks = []
    for r in rows[1:]:
        v = r[dur].replace(',', '')
        if v.replace('.', '', 1).isdigit():  # skips the units row
            ks.append((r[name], float(v)))
    by = collections.OrderedDict()
    for n, t in ks:
        a = by.setdefault(n[:90], [0, 0.0])
        a[0] += 1
        a[1] += t
    total = sum(t for _, t in ks)
    print(f'## {path}: {len(ks)} kernels, sum {total / 1e3:.1f} us\n')
    print('| kernel | calls | total us | us/call |\n|---|---|---|---|')
    for n, (c, t) in sorted(by.items(), key=lambda x: -x[1][1]):
        print(f'| {n} | {c} | {t / 1e3:.1f} | {t / c / 1e3:.2f} |')
    print('\nin launch order (first 40), us:\n')
    print('\n'.join(f'- {n[:70]} {t / 1e3:.2f}' for n, t in ks[:40]) + '\n')
