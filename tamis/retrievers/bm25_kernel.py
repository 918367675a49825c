"""Exact top-k BM25 over one index shard, compiled with numba: term-at-a-time for short postings, block-max MaxScore
for long ones.

A query's score for a document is the sum of its terms' stored contributions,
each times the term's count in the query. Two exact strategies, picked per
query and shard by the number of postings the query touches:

- **term-at-a-time** (at most `taat_max` postings): add every posting into a
  dense accumulator that stays zero between queries (only touched cells are
  reset), then offer the touched documents to a k-heap. No per-query
  allocation of the shard's size, no pass over untouched documents.
- **block-max MaxScore** (Turtle & Flood 1995; Ding & Suel 2011; as in PISA):
  terms sorted by their upper bound (largest contribution times query count).
  Once the heap holds k documents, its worst score is a threshold θ, and the
  longest run of low-bound terms whose bounds sum to at most θ is
  "non-essential": a document found only in them cannot beat θ. Documents are
  visited in order over the essential terms' postings only; a candidate's
  bound is then tightened with each non-essential term's *block* maximum (the
  largest contribution among the 64 postings around it), and those terms are
  looked up (by block, then binary search) only while the bound still beats θ.

Why it is exact: every skipped document has an upper bound ≤ θ, so its score is
≤ θ; the heap orders by (score desc, document asc), and documents arrive in
increasing global order (shards in order, documents in order), so a later
document that only ties θ would rank below the heap's worst anyway. Bounds are
inflated by 1e-7 (relative) so float rounding in a different summation order
can never let a true score exceed its bound. Scores are summed in float64.

The heap carries over from shard to shard (documents are numbered
`base + local`), so later shards start with the threshold earlier ones set;
the last shard's call sorts each heap best-first. Compiled with `cache=True`:
the first call in a fresh environment compiles (a few seconds), later
processes load the cached machine code.
"""

import numpy as np
from numba import njit

INFLATE = 1.0 + 1e-7


@njit(cache=True, inline="always")
def _worse(s1, d1, s2, d2):
    """(s1, d1) ranks below (s2, d2): a lower score, or the same score and a later document."""
    return s1 < s2 or (s1 == s2 and d1 > d2)


@njit(cache=True)
def _sift_down(hs, hd, n, i):
    """Restore the heap (worst at the root) below position i."""
    s, d = hs[i], hd[i]
    while True:
        c = 2 * i + 1
        if c >= n:
            break
        r = c + 1
        if r < n and _worse(hs[r], hd[r], hs[c], hd[c]):
            c = r
        if _worse(hs[c], hd[c], s, d):
            hs[i] = hs[c]
            hd[i] = hd[c]
            i = c
        else:
            break
    hs[i] = s
    hd[i] = d


@njit(cache=True)
def _offer(hs, hd, n, s, d):
    """Offer (score, doc) to a heap holding n of at most len(hs) entries; returns the new n."""
    k = len(hs)
    if n < k:
        i = n
        while i > 0:
            p = (i - 1) >> 1
            if _worse(s, d, hs[p], hd[p]):
                hs[i] = hs[p]
                hd[i] = hd[p]
                i = p
            else:
                break
        hs[i] = s
        hd[i] = d
        return n + 1
    if _worse(hs[0], hd[0], s, d):
        hs[0] = s
        hd[0] = d
        _sift_down(hs, hd, n, 0)
    return n


@njit(cache=True)
def _sort_heap(hs, hd, n):
    """Heap sort in place: the worst goes to the end, repeatedly, leaving the entries best first."""
    for end in range(n - 1, 0, -1):
        s, d = hs[end], hd[end]
        hs[end] = hs[0]
        hd[end] = hd[0]
        hs[0] = s
        hd[0] = d
        _sift_down(hs, hd, end, 0)


@njit(cache=True)
def _term_at_a_time(tids, weights, data, indices, indptr, n_docs, base, allow, hs, hd, n, acc, touched, postings):
    """Sum every posting into `acc`, then offer each document with a non-zero score (and reset its cell).

    When the postings are few against the shard, only the touched cells are
    visited (a document's slot is kept the first time its cell leaves zero;
    a repeat is harmless, its cell is zero by then); otherwise one ordered
    pass over the shard is cheaper than keeping that list.
    """
    sparse = postings * 4 < n_docs
    n_touched = 0
    for j in range(len(tids)):
        t = tids[j]
        w = weights[j]
        if sparse:
            for p in range(indptr[t], indptr[t + 1]):
                d = indices[p]
                touched[n_touched] = d  # branch-free: the slot is kept only when the cell was zero
                n_touched += acc[d] == 0.0
                acc[d] += w * data[p]
        else:
            for p in range(indptr[t], indptr[t + 1]):
                acc[indices[p]] += w * data[p]
    filtered = len(allow) > 0
    k = len(hs)
    theta = hs[0] if n == k else -np.inf
    # Nested tests, most selective first: numba compiles a compound condition here to much slower code.
    for j in range(n_touched if sparse else n_docs):
        d = touched[j] if sparse else j
        s = acc[d]
        acc[d] = 0.0
        if s >= theta:
            if s != 0.0:
                if not filtered or allow[d] != 0:
                    doc = base + d
                    if n < k:
                        n = _offer(hs, hd, n, s, doc)
                    elif s > theta or doc < hd[0]:  # a tie goes to the earlier document
                        # the worst entry gives way: put (s, doc) at the root and sift it down (written out: a call
                        # passing the heap's arrays costs more in reference counting than the sift)
                        i = 0
                        while True:
                            c = 2 * i + 1
                            if c >= n:
                                break
                            if c + 1 < n:
                                if hs[c + 1] < hs[c] or (hs[c + 1] == hs[c] and hd[c + 1] > hd[c]):
                                    c += 1
                            if hs[c] < s or (hs[c] == s and hd[c] > doc):
                                hs[i] = hs[c]
                                hd[i] = hd[c]
                                i = c
                            else:
                                break
                        hs[i] = s
                        hd[i] = doc
                    if n == k:
                        theta = hs[0]
    return n


@njit(cache=True)
def _maxscore(tids, weights, data, indices, indptr, block_max, block_last, block_ptr, term_max, base, allow, hs, hd, n):
    block = 64  # tamis.indexes.bm25.BLOCK; the loader refuses an index with another block size
    m = len(tids)
    ub = np.empty(m)
    w = np.empty(m)
    pos = np.empty(m, np.int64)
    end = np.empty(m, np.int64)
    b0 = np.empty(m, np.int64)  # first block of the term
    # insertion sort of the query's terms by upper bound, ascending (queries have few terms)
    for j in range(m):
        t = tids[j]
        bound = max(weights[j] * term_max[t], 0.0) * INFLATE
        i = j
        while i > 0 and ub[i - 1] > bound:
            ub[i] = ub[i - 1]
            w[i] = w[i - 1]
            pos[i] = pos[i - 1]
            end[i] = end[i - 1]
            b0[i] = b0[i - 1]
            i -= 1
        ub[i] = bound
        w[i] = weights[j]
        pos[i] = indptr[t]
        end[i] = indptr[t + 1]
        b0[i] = block_ptr[t]
    start = pos.copy()
    bc = b0.copy()  # block cursor: the first block whose last document is >= the current candidate
    be = np.empty(m, np.int64)  # one past the term's last block
    prefix = np.empty(m)  # prefix[i]: sum of the upper bounds of terms 0..i
    tight = np.zeros(m)  # each term's block bound at the current candidate
    total = 0.0
    for i in range(m):
        be[i] = b0[i] + (end[i] - pos[i] + block - 1) // block
        total += ub[i]
        prefix[i] = total
    filtered = len(allow) > 0
    k = len(hs)
    never = np.int64(1) << 62
    theta = -np.inf
    ne = 0  # terms [0, ne) are non-essential: their upper bounds together cannot beat theta
    if n == k:
        theta = hs[0]
        while ne < m and prefix[ne] <= theta:
            ne += 1
    cur = never
    for i in range(ne, m):
        if pos[i] < end[i] and indices[pos[i]] < cur:
            cur = indices[pos[i]]
    last = np.int64(-1)  # block bounds `tight` (and their sum `bound`) hold for documents up to `last`
    bound = 0.0
    rest = 0.0  # sum of tight over the non-essential terms
    while ne < m and cur < never:
        if n == k:
            if cur > last:
                # Every term's block at cur: its max bounds the term's contribution to any document up to the
                # nearest block end, so the sum bounds every score in (previous region, last].
                bound = 0.0
                rest = 0.0
                last = never
                for i in range(m):
                    b = bc[i]
                    while b < be[i]:
                        if block_last[b] >= cur:
                            break
                        b += 1
                    bc[i] = b
                    v = 0.0
                    if b < be[i]:
                        v = max(w[i] * block_max[b], 0.0) * INFLATE
                        if block_last[b] < last:
                            last = block_last[b]
                    tight[i] = v
                    bound += v
                    if i < ne:
                        rest += v
            if bound <= theta:  # nothing up to `last` can enter: skip past it
                nxt = never
                target = last + 1
                for i in range(ne, m):
                    # seek term i to its first posting >= target: walk its blocks, then binary search in one
                    # (written out here: a call passing these arrays costs more in reference counting than the search)
                    p = pos[i]
                    if p < end[i]:
                        if indices[p] < target:
                            b = bc[i]
                            while b < be[i]:
                                if block_last[b] >= target:
                                    break
                                b += 1
                            bc[i] = b
                            if b == be[i]:
                                p = end[i]
                            else:
                                first = start[i] + (b - b0[i]) * block
                                p = max(p, first)
                                hi = min(first + block, end[i])
                                while p < hi:
                                    mid = (p + hi) >> 1
                                    if indices[mid] < target:
                                        p = mid + 1
                                    else:
                                        hi = mid
                            pos[i] = p
                    if p < end[i]:
                        if indices[p] < nxt:
                            nxt = indices[p]
                cur = nxt
                continue
        score = 0.0
        nxt = never
        for i in range(ne, m):
            p = pos[i]
            if p < end[i]:
                d = indices[p]
                if d == cur:
                    score += w[i] * data[p]
                    p += 1
                    pos[i] = p
                    if p == end[i]:
                        continue
                    d = indices[p]
                if d < nxt:
                    nxt = d
        if filtered:
            if allow[cur] == 0:
                cur = nxt
                continue
        if n < k:  # nothing is pruned until the heap is full (then ne == 0 and the score is complete)
            if score != 0.0:
                n = _offer(hs, hd, n, score, base + cur)
                if n == k:
                    theta = hs[0]
                    while ne < m and prefix[ne] <= theta:
                        ne += 1
                    last = -1  # block bounds are computed from here on
            cur = nxt
            continue
        if score + rest > theta:
            s = score
            left = rest
            for i in range(ne - 1, -1, -1):  # look the candidate up in the non-essential terms, largest bound first
                left -= tight[i]
                # seek term i to its first posting >= cur: walk its blocks, then binary search in one
                # (written out here: a call passing these arrays costs more in reference counting than the search)
                p = pos[i]
                if p < end[i]:
                    if indices[p] < cur:
                        b = bc[i]
                        while b < be[i]:
                            if block_last[b] >= cur:
                                break
                            b += 1
                        bc[i] = b
                        if b == be[i]:
                            p = end[i]
                        else:
                            first = start[i] + (b - b0[i]) * block
                            p = max(p, first)
                            hi = min(first + block, end[i])
                            while p < hi:
                                mid = (p + hi) >> 1
                                if indices[mid] < cur:
                                    p = mid + 1
                                else:
                                    hi = mid
                        pos[i] = p
                if p < end[i]:
                    if indices[p] == cur:
                        s += w[i] * data[p]
                if s + left <= theta:
                    s = -np.inf
                    break
            if s > theta:  # a later document must beat the worst strictly: ties go to earlier ones
                if s != 0.0:
                    doc = base + cur
                    # the worst entry gives way: put (s, doc) at the root and sift it down (written out: a call
                    # passing the heap's arrays costs more in reference counting than the sift)
                    i = 0
                    while True:
                        c = 2 * i + 1
                        if c >= n:
                            break
                        if c + 1 < n:
                            if hs[c + 1] < hs[c] or (hs[c + 1] == hs[c] and hd[c + 1] > hd[c]):
                                c += 1
                        if hs[c] < s or (hs[c] == s and hd[c] > doc):
                            hs[i] = hs[c]
                            hd[i] = hd[c]
                            i = c
                        else:
                            break
                    hs[i] = s
                    hd[i] = doc
                    theta = hs[0]
                    while ne < m and prefix[ne] <= theta:
                        rest += tight[ne]
                        ne += 1
        cur = nxt
    return n


@njit(cache=True)
def query_terms(stream, n_queries):
    """A mapped word stream (vocabulary ids; -1 for no term; -2 ends a query) -> each query's distinct ids in
    ascending order, their counts, and the queries' slice bounds."""
    tids = np.empty(len(stream), np.int64)
    counts = np.empty(len(stream), np.float64)
    bounds = np.zeros(n_queries + 1, np.int64)
    q = 0
    start = 0  # first slot of the current query
    n = 0
    for t in stream:
        if t == -2:
            # sort the query's ids (insertion sort: queries are short), then merge repeats into counts
            for i in range(start + 1, n):
                v = tids[i]
                j = i
                while j > start and tids[j - 1] > v:
                    tids[j] = tids[j - 1]
                    j -= 1
                tids[j] = v
            m = start
            for i in range(start, n):
                if m > start and tids[m - 1] == tids[i]:
                    counts[m - 1] += 1.0
                else:
                    tids[m] = tids[i]
                    counts[m] = 1.0
                    m += 1
            n = m
            q += 1
            bounds[q] = n
            start = n
        elif t >= 0:
            tids[n] = t
            n += 1
    return tids[:n], counts[:n], bounds


@njit(cache=True)
def search_shard(
    tids,
    weights,
    qptr,
    data,
    indices,
    indptr,
    block_max,
    block_last,
    block_ptr,
    term_max,
    n_docs,
    base,
    allow,
    taat_max,
    hs,
    hd,
    hn,
    acc,
    touched,
    final,
):
    """Offer one shard's (n_docs documents) matching documents to every query's heap (row q of hs/hd, hn[q] entries).

    Query q's terms are tids[qptr[q]:qptr[q+1]] (vocabulary ids, each once) with
    weights (their counts in the query). `allow` is empty, or a 0/1 flag per
    document of the shard. `acc` and `touched` are scratch of at least the
    shard's size; acc is zero on entry and on return. With `final`, each heap
    is then sorted best first.
    """
    for q in range(len(qptr) - 1):
        a, b = qptr[q], qptr[q + 1]
        if b > a:
            tq = tids[a:b]
            wq = weights[a:b]
            postings = 0
            for t in tq:
                postings += indptr[t + 1] - indptr[t]
            if postings > 0:
                if postings <= taat_max:
                    hn[q] = _term_at_a_time(
                        tq, wq, data, indices, indptr, n_docs, base, allow, hs[q], hd[q], hn[q], acc, touched, postings
                    )
                else:
                    hn[q] = _maxscore(
                        tq,
                        wq,
                        data,
                        indices,
                        indptr,
                        block_max,
                        block_last,
                        block_ptr,
                        term_max,
                        base,
                        allow,
                        hs[q],
                        hd[q],
                        hn[q],
                    )
        if final:
            _sort_heap(hs[q], hd[q], hn[q])
