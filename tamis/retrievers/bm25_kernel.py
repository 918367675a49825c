"""Exact top-k BM25 over one index shard, compiled with numba: term-at-a-time for short postings, windowed block-max
MaxScore for long ones.

A query's score for a document is the sum of its terms' stored contributions,
each times the term's count in the query. Two exact strategies, picked per
query and shard by the number of postings the query touches:

- **term-at-a-time** (at most TAAT_MAX_POSTINGS postings, or while the top k is still filling): add every posting into an
  accumulator that stays zero between queries, then offer each document with a
  non-zero score to the top k, either from a list of the touched cells (few
  postings against the shard) or in one ordered pass (many). No allocation of
  the shard's size per query.
- **windowed block-max MaxScore** (Turtle & Flood 1995; Ding & Suel 2011; the
  window scheme of Lucene's MaxScoreBulkScorer): the shard is read in windows
  of WINDOW documents. In a window each term's bound is the largest block
  maximum (largest contribution among 64 postings, stored in the index) of its
  blocks there. Once the top k is full, its worst score is a threshold θ:
  a window whose bounds sum to ≤ θ is skipped whole; otherwise the terms with
  the smallest bounds, as many as sum to ≤ θ, are "non-essential" (a document
  found only in them cannot beat θ). The essential terms' postings are summed
  term-at-a-time into a window-sized accumulator, skipping each block whose
  maximum plus every other term's bound cannot beat θ; then each candidate
  that could still beat θ with the non-essential bounds is visited in document
  order (a bitmap) and looked up in the non-essential terms with cursors that
  only move forward, largest bound first, stopping as soon as it cannot win.

Why it is exact: a document is skipped only when an upper bound of its score is
≤ θ. Bounds are inflated by 1e-7 (relative) and clamped at 0, so a bound
exceeds the score it bounds whatever the float rounding: a skipped document
scores strictly below θ and could not enter even by a tie. Candidates that
tie θ are settled by the order (score desc, document asc). Scores are summed
in float64 from the float32 contributions.

The top k is a heap with its worst entry at the root (or, for k ≤ 16, an array
sorted worst first, which is also a valid heap) and it carries over from shard
to shard (documents numbered `base + local`), so a later shard starts with the
threshold the earlier ones set; the last shard's call sorts it best first.
Heap updates are written out inline: numba reference-counts every array
passed to a call, and those atomic operations cost more than the updates.
Compiled with `cache=True`: the first call in a fresh environment compiles
(about ten seconds), later processes load the cached machine code.
"""

import numpy as np
from numba import njit
from numba.cpython.unsafe.numbers import trailing_zeros

INFLATE = 1.0 + 1e-7
# Strategies (search_shard's `strategy`): AUTO picks per query and shard; the others force one (tests, and
# DENSE for indexes with negative contributions, where only the dense pass is exact).
AUTO, TERM_AT_A_TIME, MAXSCORE, DENSE = 0, 1, 2, 3
# Under AUTO, a query touching at most this many postings of a shard is scored term-at-a-time: below it, summing
# every posting costs less than MaxScore's bookkeeping (measured on synthetic web text, docs/bm25.md).
TAAT_MAX_POSTINGS = 1 << 14
WINDOW = 4096  # documents per MaxScore window: the unit of its bounds and of its accumulator


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
def _term_at_a_time(tids, weights, data, indices, indptr, n_docs, base, allow, hs, hd, n, acc, touched, sparse):
    """Sum every posting into `acc`, then offer each document with a non-zero score (and reset its cell).

    When the postings are few against the shard, only the touched cells are
    visited (a document's slot is kept the first time its cell leaves zero;
    a repeat is harmless, its cell is zero by then); otherwise one ordered
    pass over the shard is cheaper than keeping that list.
    """
    n_touched = 0
    for j in range(len(tids)):
        t = tids[j]
        w = weights[j]
        if sparse:
            for p in range(indptr[t], indptr[t + 1]):
                d = indices[p]
                was = acc[d]
                now = was + w * data[p]
                touched[n_touched] = d  # branch-free: the slot is kept when the cell leaves zero
                n_touched += (was == 0.0) & (now != 0.0)
                acc[d] = now
        else:
            for p in range(indptr[t], indptr[t + 1]):
                acc[indices[p]] += w * data[p]
    filtered = len(allow) > 0
    k = len(hs)
    small = k <= 16  # then a sorted array beats a heap: fewer unpredictable branches per insertion
    if small:
        for i in range(1, n):  # the entries so far, worst first
            s, doc = hs[i], hd[i]
            j = i
            while j > 0:
                if hs[j - 1] < s or (hs[j - 1] == s and hd[j - 1] > doc):
                    break
                hs[j] = hs[j - 1]
                hd[j] = hd[j - 1]
                j -= 1
            hs[j] = s
            hd[j] = doc
    theta = hs[0] if n == k else -np.inf
    # Nested tests, most selective first: numba compiles a compound condition here to much slower code.
    count = n_touched if sparse else n_docs
    j = 0
    while j < count:
        if sparse:
            d = touched[j]
            s = acc[d]
            acc[d] = 0.0  # (in the dense case the whole range is cleared at the end, a cheaper store)
        else:
            if j & 15 == 0 and j + 16 <= count:
                # skip 16 documents at once when none beats theta: a max over 4 independent chains (so the
                # compare latencies overlap) costs far less than 16 one-by-one tests
                m0 = max(max(acc[j], acc[j + 4]), max(acc[j + 8], acc[j + 12]))
                m1 = max(max(acc[j + 1], acc[j + 5]), max(acc[j + 9], acc[j + 13]))
                m2 = max(max(acc[j + 2], acc[j + 6]), max(acc[j + 10], acc[j + 14]))
                m3 = max(max(acc[j + 3], acc[j + 7]), max(acc[j + 11], acc[j + 15]))
                if max(max(m0, m1), max(m2, m3)) < theta:
                    j += 16
                    continue
            d = j
            s = acc[d]
        j += 1
        if s >= theta:
            if s != 0.0:
                if not filtered or allow[d] != 0:
                    doc = base + d
                    if small:
                        # a sorted array, worst first (so still a valid heap): shift the worse entries over
                        if n < k:
                            at = n
                            n += 1
                            while at > 0:
                                if hs[at - 1] < s or (hs[at - 1] == s and hd[at - 1] > doc):
                                    break
                                hs[at] = hs[at - 1]
                                hd[at] = hd[at - 1]
                                at -= 1
                        elif s > theta or doc < hd[0]:  # a tie goes to the earlier document
                            at = 0
                            while at + 1 < k:
                                if hs[at + 1] > s or (hs[at + 1] == s and hd[at + 1] < doc):
                                    break
                                hs[at] = hs[at + 1]
                                hd[at] = hd[at + 1]
                                at += 1
                        else:
                            continue
                        hs[at] = s
                        hd[at] = doc
                    elif n < k:
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
    if not sparse:
        acc[:n_docs] = 0.0
    return n


@njit(cache=True)
def _kth_largest(values, lo, hi, k, buf):
    """The k-th largest of values[lo:hi] (-inf when there are fewer than k), with `buf` as scratch of k slots."""
    if hi - lo < k:
        return -np.inf
    n = 0
    for p in range(lo, hi):
        x = values[p]
        if n < k:  # fill, keeping buf ascending
            at = n
            n += 1
            while at > 0:
                if buf[at - 1] <= x:
                    break
                buf[at] = buf[at - 1]
                at -= 1
            buf[at] = x
        elif x > buf[0]:  # the smallest gives way
            at = 0
            while at + 1 < k:
                if buf[at + 1] >= x:
                    break
                buf[at] = buf[at + 1]
                at += 1
            buf[at] = x
    return buf[0]


@njit(cache=True)
def _maxscore(
    tids, weights, data, indices, indptr, block_max, block_last, block_ptr, n_docs, base, allow, hs, hd, n, acc, touched
):
    """Windowed block-max MaxScore (the scheme of Lucene's MaxScoreBulkScorer), exact; see the module docstring."""
    block = 64  # tamis.indexes.bm25.BLOCK; the loader refuses an index with another block size
    m = len(tids)
    w = np.empty(m)
    pos = np.empty(m, np.int64)
    end = np.empty(m, np.int64)
    b0 = np.empty(m, np.int64)  # the term's first block
    be = np.empty(m, np.int64)  # one past its last block
    for i in range(m):
        t = tids[i]
        w[i] = weights[i]
        pos[i] = indptr[t]
        end[i] = indptr[t + 1]
        b0[i] = block_ptr[t]
        be[i] = block_ptr[t + 1]
    start = pos.copy()
    bc = b0.copy()  # block cursor: the block holding pos (or the first one past it)
    bound = np.empty(m)  # each term's bound over the window
    stop = np.empty(m, np.int64)  # each non-essential term's first posting past the window
    order = np.empty(m, np.int64)
    bits = np.zeros(WINDOW >> 6, np.uint64)  # candidates of the window, by window-local document
    filtered = len(allow) > 0
    k = len(hs)
    never = np.int64(1) << 62
    # A floor under the k-th best score before any document is scored: a term's k largest block maxima are the
    # contributions of k different documents, each scoring at least that much (contributions are never negative
    # on this path). Not with a filter, which may exclude those documents.
    floor = -np.inf
    if not filtered and k <= 64:
        buf = np.empty(k, np.float32)
        for t in range(m):
            if be[t] - b0[t] >= k:
                floor = max(floor, w[t] * _kth_largest(block_max, b0[t], be[t], k, buf))
            elif end[t] - start[t] >= k:
                floor = max(floor, w[t] * _kth_largest(data, start[t], end[t], k, buf))
    theta = max(floor, hs[0]) if n == k else floor  # what a document must beat to be worth scoring
    lo = np.int64(0)
    while True:
        # the window starts at the first document any term still has
        first_doc = never
        for t in range(m):
            if pos[t] < end[t]:
                if indices[pos[t]] < first_doc:
                    first_doc = indices[pos[t]]
        if first_doc == never:
            break
        lo = max(lo, first_doc)
        hi = lo + WINDOW
        # each term's bound in [lo, hi): the largest max of its blocks that may reach into the window (from the
        # cursor's block on, each block while the one before it ends inside the window: block_last only, no postings)
        total = 0.0
        for t in range(m):
            v = 0.0
            b = bc[t]
            while b < be[t]:
                x = w[t] * block_max[b]
                if x > v:
                    v = x
                if block_last[b] >= hi - 1:
                    break
                b += 1
            bound[t] = v * INFLATE
            total += bound[t]
        if total <= theta:  # nothing in the window can enter: move every term past it
            for t in range(m):
                # term t's first posting >= hi: walk its blocks, then binary search in one (written out: a call
                # passing these arrays costs more in reference counting than the search)
                p = pos[t]
                if p < end[t]:
                    if indices[p] < hi:
                        b = bc[t]
                        while b < be[t]:
                            if block_last[b] >= hi:
                                break
                            b += 1
                        bc[t] = b
                        if b == be[t]:
                            p = end[t]
                        else:
                            first = start[t] + (b - b0[t]) * block
                            p = max(p, first)
                            top = min(first + block, end[t])
                            while p < top:
                                mid = (p + top) >> 1
                                if indices[mid] < hi:
                                    p = mid + 1
                                else:
                                    top = mid
                pos[t] = p
            lo = hi
            continue
        # terms by window bound, ascending; the longest prefix whose bounds sum to <= theta is non-essential
        for t in range(m):
            j = t
            while j > 0 and bound[order[j - 1]] > bound[t]:
                order[j] = order[j - 1]
                j -= 1
            order[j] = t
        ne = 0
        rest = 0.0
        while ne < m and rest + bound[order[ne]] <= theta:
            rest += bound[order[ne]]
            ne += 1
        # essential terms: sum their postings in the window into acc (window-local), block by block, skipping a
        # block whose max plus every other term's window bound cannot beat theta
        n_touched = 0
        for r in range(ne, m):
            t = order[r]
            others = total - bound[t]
            p = pos[t]
            b = bc[t]
            while p < end[t]:
                if indices[p] >= hi:
                    break
                first = start[t] + (b - b0[t]) * block
                last_p = min(first + block, end[t])
                if w[t] * block_max[b] * INFLATE + others <= theta:
                    if block_last[b] < hi:
                        p = last_p
                    else:
                        while p < last_p:
                            if indices[p] >= hi:
                                break
                            p += 1
                else:
                    wt = w[t]
                    while p < last_p:
                        d = indices[p] - lo
                        if d >= WINDOW:
                            break
                        was = acc[d]
                        now = was + wt * data[p]
                        touched[n_touched] = d  # branch-free: the slot is kept when the cell leaves zero
                        n_touched += (was == 0.0) & (now != 0.0)
                        acc[d] = now
                        p += 1
                if p == last_p:
                    b += 1
            pos[t] = p
            bc[t] = b
        # non-essential terms: their postings in the window, for lookups
        for r in range(ne):
            t = order[r]
            # term t's first posting >= hi: walk its blocks, then binary search in one (written out: a call
            # passing these arrays costs more in reference counting than the search)
            p = pos[t]
            if p < end[t]:
                if indices[p] < hi:
                    b = bc[t]
                    while b < be[t]:
                        if block_last[b] >= hi:
                            break
                        b += 1
                    bc[t] = b
                    if b == be[t]:
                        p = end[t]
                    else:
                        first = start[t] + (b - b0[t]) * block
                        p = max(p, first)
                        top = min(first + block, end[t])
                        while p < top:
                            mid = (p + top) >> 1
                            if indices[mid] < hi:
                                p = mid + 1
                            else:
                                top = mid
            stop[t] = p
        # Candidates. With no non-essential term a score is complete: offer it. Otherwise keep the candidates that
        # could still beat theta in a bitmap, so they are visited in document order and each non-essential term is
        # looked up with a cursor that only moves forward.
        for j in range(n_touched):
            d = touched[j]
            s = acc[d]
            if s == 0.0:
                continue
            if filtered:
                if allow[lo + d] == 0:
                    acc[d] = 0.0
                    continue
            if ne > 0:
                if s + rest < theta:  # (equal may still win a tie, which the insertion test settles)
                    acc[d] = 0.0
                else:
                    bits[d >> 6] |= np.uint64(1) << np.uint64(d & 63)
                continue
            acc[d] = 0.0
            doc = base + lo + d
            if n < k:
                n = _offer(hs, hd, n, s, doc)
                if n == k:
                    theta = max(floor, hs[0])
            elif s > hs[0] or (s == hs[0] and doc < hd[0]):  # unordered here: a tie goes to the earlier document
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
                theta = max(floor, hs[0])
        if ne > 0:
            for word_index in range(WINDOW >> 6):
                word = bits[word_index]
                if word == 0:
                    continue
                bits[word_index] = 0
                while word != 0:
                    d = (word_index << 6) + trailing_zeros(word)
                    word &= word - np.uint64(1)
                    s = acc[d]
                    acc[d] = 0.0
                    if s + rest < theta:
                        continue
                    target = lo + d
                    left = rest
                    for r in range(ne - 1, -1, -1):  # non-essential terms, largest bound first
                        t = order[r]
                        left -= bound[t]
                        c = pos[t]
                        while c + 8 < stop[t]:
                            if indices[c + 8] >= target:
                                break
                            c += 8
                        while c < stop[t]:
                            if indices[c] >= target:
                                break
                            c += 1
                        pos[t] = c
                        if c < stop[t]:
                            if indices[c] == target:
                                s += w[t] * data[c]
                        if s + left < theta:
                            s = -np.inf
                            break
                    if s == -np.inf:
                        continue
                    doc = base + target
                    if n < k:
                        n = _offer(hs, hd, n, s, doc)
                        if n == k:
                            theta = max(floor, hs[0])
                    elif s > hs[0] or (s == hs[0] and doc < hd[0]):
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
                        theta = max(floor, hs[0])
        for r in range(ne):  # non-essential terms move past the window too
            t = order[r]
            pos[t] = stop[t]
            b = bc[t]
            while b < be[t]:
                if block_last[b] >= hi:
                    break
                b += 1
            bc[t] = b
        lo = hi
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


@njit(cache=True, nogil=True)  # other threads (a service's event loop) run while a shard is searched
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
    n_docs,
    base,
    allow,
    strategy,
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
                # MaxScore pays once a threshold exists: with the top k still filling (the first shard), summing
                # every posting was as fast on synthetic web text; after it, MaxScore was faster (docs/bm25.md)
                taat = strategy == TERM_AT_A_TIME or strategy == DENSE
                if strategy == AUTO:
                    taat = postings <= TAAT_MAX_POSTINGS or hn[q] < len(hs[q])
                if taat:
                    sparse = strategy != DENSE and postings * 8 < n_docs
                    hn[q] = _term_at_a_time(
                        tq, wq, data, indices, indptr, n_docs, base, allow, hs[q], hd[q], hn[q], acc, touched, sparse
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
                        n_docs,
                        base,
                        allow,
                        hs[q],
                        hd[q],
                        hn[q],
                        acc,
                        touched,
                    )
        if final:
            _sort_heap(hs[q], hd[q], hn[q])
