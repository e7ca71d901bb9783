//! Growing one tree leaf-wise (best-first) on binned data from gradient/hessian histograms, the core
//! of LightGBM (Ke et al., NeurIPS 2017), including histogram subtraction, learned missing-value
//! directions and LightGBM's sorted-category partition search for categorical features.
//!
//! Determinism: each feature's histogram is summed sequentially in row order by one task, and
//! choices between features are made after collecting, lowest feature first on ties, so the tree does
//! not depend on how rayon schedules work.

use rayon::prelude::*;

use super::quantize::{BLOCK, Quantized, Wide};
use crate::binning::FeatureBins;

/// Rows below which a leaf's histograms are built on the calling thread: spawning costs more.
const PAR_MIN_ROWS: usize = 2048;

/// Rows from which a leaf is partitioned in parallel, and the fixed chunk size for it.
const PAR_PARTITION_MIN_ROWS: usize = 4096;
const PARTITION_CHUNK: usize = 2048;

/// Features below which split finding runs on the calling thread: scanning a few hundred bins per
/// feature is cheaper than waking other threads.
const PAR_MIN_FEATURES_SPLIT: usize = 64;

/// Sum of gradients, hessians and rows falling into one bin (or one side of a split).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Sums {
    pub g: f64,
    pub h: f64,
    pub n: u32,
}

impl Sums {
    fn add(&mut self, o: &Sums) {
        self.g += o.g;
        self.h += o.h;
        self.n += o.n;
    }

    fn minus(&self, o: &Sums) -> Sums {
        // Wrapping: stale slots of features outside this tree's sample may hold anything.
        Sums {
            g: self.g - o.g,
            h: self.h - o.h,
            n: self.n.wrapping_sub(o.n),
        }
    }
}

/// Tree-growing limits and regularization, taken from checked params.
#[derive(Clone, Debug)]
pub(crate) struct TreeConfig {
    pub num_leaves: usize,
    /// 0 means no limit.
    pub max_depth: usize,
    pub min_data_in_leaf: u32,
    pub min_sum_hessian_in_leaf: f64,
    pub min_gain_to_split: f64,
    pub lambda_l2: f64,
    /// Largest |leaf output| before the learning rate; 0 means no limit.
    pub max_delta_step: f64,
    pub learning_rate: f64,
    pub cat_smooth: f64,
    pub cat_l2: f64,
    pub max_cat_threshold: usize,
    pub max_cat_to_onehot: usize,
    pub min_data_per_group: u32,
}

/// Bins of the training rows, compacted so row `i` of training is index `i` in every column.
pub(crate) struct TrainBins<'a> {
    pub cols: Vec<Vec<u8>>,
    pub feats: &'a [FeatureBins],
    /// The same codes row-major (`row * features + feature`), kept when all histograms of a leaf are
    /// small enough to build row by row (LightGBM's "row-wise" mode): one pass over a leaf's rows
    /// then reads each row's gradient once and its bins from one cache line.
    pub rows: Option<Vec<u8>>,
}

/// Largest total bin count for row-wise histograms; each parallel chunk holds a full copy.
const ROW_WISE_MAX_BINS: usize = 16_384;

/// Rows per chunk of a row-wise histogram; fixed, so partial sums never depend on the thread count.
const ROW_CHUNK: usize = 1024;
const ROW_MAX_CHUNKS: usize = 128;

impl<'a> TrainBins<'a> {
    pub(crate) fn new(cols: Vec<Vec<u8>>, feats: &'a [FeatureBins]) -> TrainBins<'a> {
        let total: usize = feats.iter().map(|f| f.num_bins).sum();
        let n = cols.first().map_or(0, |c| c.len());
        let nf = cols.len();
        let rows = (nf > 0 && total <= ROW_WISE_MAX_BINS).then(|| {
            let mut m = vec![0u8; n * nf];
            m.par_chunks_mut(nf).enumerate().for_each(|(r, row)| {
                for (f, b) in row.iter_mut().enumerate() {
                    *b = cols[f][r];
                }
            });
            m
        });
        TrainBins { cols, feats, rows }
    }
}

/// A split on bin codes. Categorical sets are over bins (at most 256), as a 256-bit set.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum BinSplit {
    /// Bins `<= threshold` go left; the missing bin follows `default_left`.
    Numeric { threshold: u8 },
    /// Bins in the set go left; the set holds the missing bin exactly when `default_left`.
    Categorical { left: [u64; 4] },
}

#[derive(Clone, Debug)]
pub(crate) struct SplitInfo {
    pub feature: usize,
    pub gain: f64,
    pub split: BinSplit,
    pub default_left: bool,
    pub left: Sums,
    pub right: Sums,
}

#[derive(Clone, Debug)]
pub(crate) struct TreeNode {
    pub feature: usize,
    pub split: BinSplit,
    pub default_left: bool,
    /// Child references: `>= 0` is an internal node, `< 0` is leaf `!child`.
    pub left: i32,
    pub right: i32,
}

/// A grown tree on bin codes, with its leaf values already scaled by the learning rate.
#[derive(Clone, Debug)]
pub(crate) struct Tree {
    pub nodes: Vec<TreeNode>,
    pub leaf_values: Vec<f64>,
    /// Training rows (of the tree's bag) that reached each leaf: the covers TreeSHAP weighs by.
    pub leaf_counts: Vec<u32>,
}

fn bit(set: &[u64; 4], b: u8) -> bool {
    set[(b >> 6) as usize] >> (b & 63) & 1 == 1
}

#[inline]
fn goes_left(node_split: &BinSplit, default_left: bool, missing_bin: u8, b: u8) -> bool {
    match node_split {
        BinSplit::Numeric { threshold } => {
            if b == missing_bin {
                default_left
            } else {
                b <= *threshold
            }
        }
        BinSplit::Categorical { left } => bit(left, b),
    }
}

impl Tree {
    /// The leaf a row reaches, reading its bin for feature `f` from `bin(f)`.
    pub(crate) fn leaf_binned(&self, feats: &[FeatureBins], bin: impl Fn(usize) -> u8) -> usize {
        if self.nodes.is_empty() {
            return 0;
        }
        let mut i = 0usize;
        loop {
            let n = &self.nodes[i];
            let b = bin(n.feature);
            let next = if goes_left(&n.split, n.default_left, feats[n.feature].missing_bin(), b) {
                n.left
            } else {
                n.right
            };
            if next < 0 {
                return !next as usize;
            }
            i = next as usize;
        }
    }
}

struct Leaf {
    start: usize,
    end: usize,
    sums: Sums,
    depth: usize,
    hist: Vec<Sums>,
    best: Option<SplitInfo>,
    /// The internal node pointing at this leaf, and whether as its left child.
    parent: Option<(usize, bool)>,
}

/// Reusable buffers for growing trees over one training set.
pub(crate) struct Grower<'a> {
    data: &'a TrainBins<'a>,
    cfg: &'a TreeConfig,
    offsets: Vec<usize>,
    total_bins: usize,
    ordered_g: Vec<f64>,
    ordered_h: Vec<f64>,
    ordered_packed: Vec<u64>,
    scratch: Vec<u32>,
    pool: Vec<Vec<Sums>>,
}

impl<'a> Grower<'a> {
    pub(crate) fn new(data: &'a TrainBins<'a>, cfg: &'a TreeConfig) -> Grower<'a> {
        let mut offsets = Vec::with_capacity(data.feats.len() + 1);
        let mut total = 0;
        for f in data.feats {
            offsets.push(total);
            total += f.num_bins;
        }
        offsets.push(total);
        Grower {
            data,
            cfg,
            offsets,
            total_bins: total,
            ordered_g: Vec::new(),
            ordered_h: Vec::new(),
            ordered_packed: Vec::new(),
            scratch: Vec::new(),
            pool: Vec::new(),
        }
    }

    /// Grows one tree on the training rows in `rows` (reordered in place so each leaf's rows are
    /// contiguous) using only features with `used[f]`. Returns the tree and each leaf's row range.
    /// With `quant`, histograms, split search and leaf values use the quantized gradients. Leaf
    /// values are not renewed from the real ones (LightGBM's `quant_train_renew_leaf`, off by
    /// default there too): on flights-3m renewing cost 0.5 s of 4.9 s for no AUC it could show.
    pub(crate) fn grow(
        &mut self,
        grad: &[f64],
        hess: &[f64],
        quant: Option<&Quantized>,
        rows: &mut [u32],
        used: &[bool],
    ) -> (Tree, Vec<(usize, usize)>) {
        let cfg = self.cfg;
        let sums = match quant {
            Some(q) => {
                let mut w = Wide::default();
                for block in rows.chunks(BLOCK) {
                    w.add_packed(
                        block
                            .iter()
                            .fold(0u64, |a, &r| a.wrapping_add(q.packed[r as usize])),
                    );
                }
                to_sums(&w, q)
            }
            None => real_sums(grad, hess, rows),
        };
        let mut hist = self.take_buffer();
        self.build_hist(grad, hess, quant, rows, used, &mut hist);
        let mut leaves = vec![Leaf {
            start: 0,
            end: rows.len(),
            sums,
            depth: 0,
            hist,
            best: None,
            parent: None,
        }];
        leaves[0].best = self.best_split(&leaves[0], used);
        let mut nodes: Vec<TreeNode> = Vec::new();

        while leaves.len() < cfg.num_leaves {
            let mut pick: Option<usize> = None;
            for (i, l) in leaves.iter().enumerate() {
                if let Some(s) = &l.best
                    && pick.is_none_or(|p| s.gain > leaves[p].best.as_ref().unwrap().gain)
                {
                    pick = Some(i);
                }
            }
            let Some(li) = pick else { break };
            let split = leaves[li].best.take().unwrap();
            let (start, end) = (leaves[li].start, leaves[li].end);
            let mid = start + self.partition(&mut rows[start..end], &split);

            let node = nodes.len();
            let right_leaf = leaves.len();
            nodes.push(TreeNode {
                feature: split.feature,
                split: split.split.clone(),
                default_left: split.default_left,
                left: !(li as i32),
                right: !(right_leaf as i32),
            });
            if let Some((p, is_left)) = leaves[li].parent {
                if is_left {
                    nodes[p].left = node as i32;
                } else {
                    nodes[p].right = node as i32;
                }
            }
            let depth = leaves[li].depth + 1;
            // Children get histograms only if one of them may still split.
            let may_split =
                leaves.len() + 1 < cfg.num_leaves && (cfg.max_depth == 0 || depth < cfg.max_depth);
            let (left_hist, right_hist) = if may_split {
                // Build the smaller child's histogram from its rows; the larger is parent minus smaller.
                let mut small = self.take_buffer();
                let left_smaller = mid - start <= end - mid;
                let small_rows = if left_smaller { start..mid } else { mid..end };
                self.build_hist(grad, hess, quant, &rows[small_rows], used, &mut small);
                let mut large = std::mem::take(&mut leaves[li].hist);
                for (l, s) in large.iter_mut().zip(&small) {
                    *l = l.minus(s);
                }
                if left_smaller {
                    (small, large)
                } else {
                    (large, small)
                }
            } else {
                self.pool.push(std::mem::take(&mut leaves[li].hist));
                (Vec::new(), Vec::new())
            };
            leaves[li] = Leaf {
                start,
                end: mid,
                sums: split.left,
                depth,
                hist: left_hist,
                best: None,
                parent: Some((node, true)),
            };
            leaves.push(Leaf {
                start: mid,
                end,
                sums: split.right,
                depth,
                hist: right_hist,
                best: None,
                parent: Some((node, false)),
            });
            if may_split {
                leaves[li].best = self.best_split(&leaves[li], used);
                let last = leaves.len() - 1;
                leaves[last].best = self.best_split(&leaves[last], used);
            }
        }

        let leaf_values = leaves.iter().map(|l| leaf_output(&l.sums, cfg)).collect();
        let leaf_counts = leaves.iter().map(|l| (l.end - l.start) as u32).collect();
        let ranges = leaves.iter().map(|l| (l.start, l.end)).collect();
        for l in leaves {
            if !l.hist.is_empty() {
                self.pool.push(l.hist);
            }
        }
        let tree = Tree {
            nodes,
            leaf_values,
            leaf_counts,
        };
        (tree, ranges)
    }

    fn take_buffer(&mut self) -> Vec<Sums> {
        self.pool
            .pop()
            .unwrap_or_else(|| vec![Sums::default(); self.total_bins])
    }

    /// Histograms of every used feature over `rows`. Unused features' slots are left stale: they are
    /// never read while the same feature subset is in force.
    fn build_hist(
        &mut self,
        grad: &[f64],
        hess: &[f64],
        quant: Option<&Quantized>,
        rows: &[u32],
        used: &[bool],
        out: &mut [Sums],
    ) {
        if let Some(q) = quant {
            self.build_hist_quantized(q, rows, used, out);
            return;
        }
        if let Some(matrix) = &self.data.rows {
            let nf = self.data.feats.len();
            let offsets = &self.offsets[..nf];
            if rows.len() <= ROW_CHUNK {
                out.fill(Sums::default());
                hist_rows(matrix, offsets, rows, grad, hess, out);
                return;
            }
            let total = self.total_bins;
            // At most ROW_MAX_CHUNKS partial histograms, so huge leaves do not allocate one per
            // thousand rows; the chunk size depends on the leaf alone, never on the thread count.
            let chunk = ROW_CHUNK.max(rows.len().div_ceil(ROW_MAX_CHUNKS));
            let partials: Vec<Vec<Sums>> = rows
                .par_chunks(chunk)
                .map(|chunk| {
                    let mut h = vec![Sums::default(); total];
                    hist_rows(matrix, offsets, chunk, grad, hess, &mut h);
                    h
                })
                .collect();
            // Partials are added in chunk order: the same sums whatever thread built which chunk.
            out.copy_from_slice(&partials[0]);
            for p in &partials[1..] {
                for (o, x) in out.iter_mut().zip(p) {
                    o.add(x);
                }
            }
            return;
        }
        // Gather gradients in leaf order once, so the per-feature loops read them sequentially.
        self.ordered_g.clear();
        self.ordered_h.clear();
        self.ordered_g
            .extend(rows.iter().map(|&r| grad[r as usize]));
        self.ordered_h
            .extend(rows.iter().map(|&r| hess[r as usize]));
        let (og, oh) = (&self.ordered_g[..], &self.ordered_h[..]);
        let mut parts: Vec<(usize, &mut [Sums])> = Vec::with_capacity(used.len());
        let mut rest = out;
        for (f, fb) in self.data.feats.iter().enumerate() {
            let (a, b) = rest.split_at_mut(fb.num_bins);
            rest = b;
            if used[f] {
                parts.push((f, a));
            }
        }
        let cols = &self.data.cols;
        let work = |(f, out): (usize, &mut [Sums])| hist_feature(&cols[f], rows, og, oh, out);
        if rows.len() < PAR_MIN_ROWS {
            parts.into_iter().for_each(work);
        } else {
            parts.into_par_iter().for_each(work);
        }
    }

    /// `build_hist` on quantized gradients: integer sums, so partial histograms may be merged in any
    /// order and work is split into as many pieces as suits the pool, not a fixed number.
    fn build_hist_quantized(
        &mut self,
        q: &Quantized,
        rows: &[u32],
        used: &[bool],
        out: &mut [Sums],
    ) {
        let packed = &q.packed[..];
        if let Some(matrix) = &self.data.rows {
            let nf = self.data.feats.len();
            let offsets = &self.offsets[..nf];
            let total = self.total_bins;
            let wide = if rows.len() <= ROW_CHUNK {
                let mut acc = RowAcc::new(total);
                acc.add(matrix, offsets, rows, packed);
                acc.finish()
            } else {
                rows.par_chunks(ROW_CHUNK)
                    .fold(
                        || RowAcc::new(total),
                        |mut acc, chunk| {
                            acc.add(matrix, offsets, chunk, packed);
                            acc
                        },
                    )
                    .map(RowAcc::finish)
                    .reduce_with(|mut a, b| {
                        a.iter_mut().zip(&b).for_each(|(x, y)| x.add(y));
                        a
                    })
                    .expect("a leaf over ROW_CHUNK rows has a chunk")
            };
            for (o, w) in out.iter_mut().zip(&wide) {
                *o = to_sums(w, q);
            }
            return;
        }
        self.ordered_packed.clear();
        self.ordered_packed
            .extend(rows.iter().map(|&r| packed[r as usize]));
        let opk = &self.ordered_packed[..];
        let mut parts: Vec<(usize, &mut [Sums])> = Vec::with_capacity(used.len());
        let mut rest = out;
        for (f, fb) in self.data.feats.iter().enumerate() {
            let (a, b) = rest.split_at_mut(fb.num_bins);
            rest = b;
            if used[f] {
                parts.push((f, a));
            }
        }
        let cols = &self.data.cols;
        let work =
            |(f, out): (usize, &mut [Sums])| hist_feature_quantized(&cols[f], rows, opk, q, out);
        if rows.len() < PAR_MIN_ROWS {
            parts.into_iter().for_each(work);
        } else {
            parts.into_par_iter().for_each(work);
        }
    }

    /// Stable partition of a leaf's rows by the split: left rows first, both sides in row order.
    /// Big leaves are cut into fixed chunks partitioned in parallel and stitched back in chunk
    /// order, which gives exactly the sequential result whatever the thread count.
    fn partition(&mut self, rows: &mut [u32], split: &SplitInfo) -> usize {
        let col = &self.data.cols[split.feature][..];
        let missing = self.data.feats[split.feature].missing_bin();
        // Per bin, whether it goes left: one table lookup per row whatever the split kind.
        let mut left_bin = [false; 256];
        for (b, l) in left_bin.iter_mut().enumerate() {
            *l = goes_left(&split.split, split.default_left, missing, b as u8);
        }
        self.scratch.clear();
        self.scratch.resize(rows.len(), 0);
        if rows.len() < PAR_PARTITION_MIN_ROWS {
            let w = partition_chunk(col, &left_bin, rows, &mut self.scratch);
            let s = rows.len() - w;
            rows[w..].copy_from_slice(&self.scratch[..s]);
            return w;
        }
        let lefts: Vec<usize> = rows
            .par_chunks_mut(PARTITION_CHUNK)
            .zip(self.scratch.par_chunks_mut(PARTITION_CHUNK))
            .map(|(r, s)| partition_chunk(col, &left_bin, r, s))
            .collect();
        // Chunk i holds its left rows at the front of its slice of `rows` and its right rows at the
        // front of its slice of `scratch`. Lefts move down in place (chunk i's lefts land at or
        // before where they are, so chunk order keeps every source unread-over), then rights
        // follow from `scratch`: one copy of each row instead of two through a spare buffer.
        let mut w = 0;
        for (i, &l) in lefts.iter().enumerate() {
            let lo = i * PARTITION_CHUNK;
            rows.copy_within(lo..lo + l, w);
            w += l;
        }
        let mut at = w;
        for (i, &l) in lefts.iter().enumerate() {
            let lo = i * PARTITION_CHUNK;
            let len = PARTITION_CHUNK.min(rows.len() - lo);
            rows[at..at + len - l].copy_from_slice(&self.scratch[lo..lo + len - l]);
            at += len - l;
        }
        w
    }

    fn best_split(&self, leaf: &Leaf, used: &[bool]) -> Option<SplitInfo> {
        let cfg = self.cfg;
        if cfg.max_depth > 0 && leaf.depth >= cfg.max_depth {
            return None;
        }
        if leaf.sums.n < 2 * cfg.min_data_in_leaf.max(1)
            || leaf.sums.h < 2.0 * cfg.min_sum_hessian_in_leaf
        {
            return None;
        }
        let per_feature = |f: usize| -> Option<SplitInfo> {
            if !used[f] {
                return None;
            }
            let fb = &self.data.feats[f];
            let hist = &leaf.hist[self.offsets[f]..self.offsets[f + 1]];
            if fb.is_categorical() {
                best_categorical(f, fb, hist, &leaf.sums, cfg)
            } else {
                best_numeric(f, fb, hist, &leaf.sums, cfg)
            }
        };
        let candidates: Vec<Option<SplitInfo>> =
            if used.len() >= PAR_MIN_FEATURES_SPLIT && leaf.sums.n as usize >= PAR_MIN_ROWS {
                (0..used.len()).into_par_iter().map(per_feature).collect()
            } else {
                (0..used.len()).map(per_feature).collect()
            };
        let mut best: Option<SplitInfo> = None;
        for c in candidates.into_iter().flatten() {
            if best.as_ref().is_none_or(|b| c.gain > b.gain) {
                best = Some(c);
            }
        }
        best
    }
}

/// Rows from which a histogram is summed into four interleaved copies.
const HIST_COPIES_MIN_ROWS: usize = 1024;

/// Moves the left rows of `rows` to its front (in order) and the right rows to the front of
/// `right` (in order); returns the number of left rows.
fn partition_chunk(
    col: &[u8],
    left_bin: &[bool; 256],
    rows: &mut [u32],
    right: &mut [u32],
) -> usize {
    let (mut w, mut s) = (0usize, 0usize);
    // Branch-free: write each row to both outputs and advance only the side it belongs to.
    for i in 0..rows.len() {
        let r = rows[i];
        let l = left_bin[col[r as usize] as usize];
        rows[w] = r;
        right[s] = r;
        w += l as usize;
        s += !l as usize;
    }
    w
}

fn real_sums(grad: &[f64], hess: &[f64], rows: &[u32]) -> Sums {
    let mut s = Sums::default();
    for &r in rows {
        s.g += grad[r as usize];
        s.h += hess[r as usize];
        s.n += 1;
    }
    s
}

fn to_sums(w: &Wide, q: &Quantized) -> Sums {
    Sums {
        g: w.g as f64 * q.g_scale,
        h: w.h as f64 * q.h_scale,
        n: w.n as u32,
    }
}

/// A row-wise quantized histogram being summed: packed bins for the current block of rows, exact
/// sums of the blocks before.
struct RowAcc {
    packed: Vec<u64>,
    pending: usize,
    wide: Vec<Wide>,
}

impl RowAcc {
    fn new(total: usize) -> RowAcc {
        RowAcc {
            packed: vec![0; total],
            pending: 0,
            wide: vec![Wide::default(); total],
        }
    }

    fn flush(&mut self) {
        for (w, p) in self.wide.iter_mut().zip(self.packed.iter_mut()) {
            w.add_packed(*p);
            *p = 0;
        }
        self.pending = 0;
    }

    fn add(&mut self, matrix: &[u8], offsets: &[usize], rows: &[u32], packed: &[u64]) {
        let nf = offsets.len();
        for block in rows.chunks(BLOCK) {
            if self.pending + block.len() > BLOCK {
                self.flush();
            }
            self.pending += block.len();
            let out = &mut self.packed[..];
            for &r in block {
                let r = r as usize;
                let x = packed[r];
                for (&off, &b) in offsets.iter().zip(&matrix[r * nf..(r + 1) * nf]) {
                    let e = &mut out[off + b as usize];
                    *e = e.wrapping_add(x);
                }
            }
        }
    }

    fn finish(mut self) -> Vec<Wide> {
        self.flush();
        self.wide
    }
}

/// One feature's quantized histogram over `rows`, whose packed gradients are `opk` in the same order.
fn hist_feature_quantized(col: &[u8], rows: &[u32], opk: &[u64], q: &Quantized, out: &mut [Sums]) {
    let mut wide = [Wide::default(); 256];
    for (rb, pb) in rows.chunks(BLOCK).zip(opk.chunks(BLOCK)) {
        // Two copies, one per row parity, so runs of rows in one bin do not wait on each other's adds.
        let mut copies = [[0u64; 256]; 2];
        let n2 = rb.len() / 2 * 2;
        let mut i = 0;
        while i < n2 {
            let a = &mut copies[0][col[rb[i] as usize] as usize];
            *a = a.wrapping_add(pb[i]);
            let b = &mut copies[1][col[rb[i + 1] as usize] as usize];
            *b = b.wrapping_add(pb[i + 1]);
            i += 2;
        }
        if n2 < rb.len() {
            let a = &mut copies[0][col[rb[n2] as usize] as usize];
            *a = a.wrapping_add(pb[n2]);
        }
        for (b, w) in wide.iter_mut().enumerate().take(out.len()) {
            // The copies together hold at most BLOCK rows, so their packed sum cannot carry.
            w.add_packed(copies[0][b].wrapping_add(copies[1][b]));
        }
    }
    for (o, w) in out.iter_mut().zip(&wide) {
        *o = to_sums(w, q);
    }
}

/// Row-wise histogram of all features over `rows`, added into `out`.
fn hist_rows(
    matrix: &[u8],
    offsets: &[usize],
    rows: &[u32],
    grad: &[f64],
    hess: &[f64],
    out: &mut [Sums],
) {
    let nf = offsets.len();
    for &r in rows {
        let r = r as usize;
        let (g, h) = (grad[r], hess[r]);
        for (&off, &b) in offsets.iter().zip(&matrix[r * nf..(r + 1) * nf]) {
            let e = &mut out[off + b as usize];
            e.g += g;
            e.h += h;
            e.n += 1;
        }
    }
}

fn hist_feature(col: &[u8], rows: &[u32], og: &[f64], oh: &[f64], out: &mut [Sums]) {
    out.fill(Sums::default());
    if rows.len() < HIST_COPIES_MIN_ROWS {
        for ((&r, &g), &h) in rows.iter().zip(og).zip(oh) {
            let e = &mut out[col[r as usize] as usize];
            e.g += g;
            e.h += h;
            e.n += 1;
        }
        return;
    }
    // Consecutive rows often share a bin (think of a two-valued feature), and adding into the same
    // slot waits for the previous add. Four copies, one per row modulo 4, keep four chains in flight.
    // They are summed in a fixed order, so the result is still independent of threads.
    let mut copies = [[Sums::default(); 256]; 4];
    let n4 = rows.len() / 4 * 4;
    let mut i = 0;
    while i < n4 {
        for (c, copy) in copies.iter_mut().enumerate() {
            let j = i + c;
            let e = &mut copy[col[rows[j] as usize] as usize];
            e.g += og[j];
            e.h += oh[j];
            e.n += 1;
        }
        i += 4;
    }
    for j in n4..rows.len() {
        let e = &mut copies[0][col[rows[j] as usize] as usize];
        e.g += og[j];
        e.h += oh[j];
        e.n += 1;
    }
    for (b, o) in out.iter_mut().enumerate() {
        for copy in &copies {
            o.add(&copy[b]);
        }
    }
}

/// The Newton step -G/(H + l2), clamped to `max_delta_step` when that is on.
fn raw_output(s: &Sums, l2: f64, max_delta_step: f64) -> f64 {
    let d = s.h + l2;
    if d <= 0.0 {
        return 0.0;
    }
    let o = -s.g / d;
    if max_delta_step > 0.0 && o.abs() > max_delta_step {
        max_delta_step.copysign(o)
    } else {
        o
    }
}

fn leaf_output(s: &Sums, cfg: &TreeConfig) -> f64 {
    raw_output(s, cfg.lambda_l2, cfg.max_delta_step) * cfg.learning_rate
}

/// How much a leaf with these sums lowers the loss (times 2), at its possibly clamped output.
fn score(s: &Sums, l2: f64, max_delta_step: f64) -> f64 {
    if max_delta_step > 0.0 {
        let o = raw_output(s, l2, max_delta_step);
        -(2.0 * s.g * o + (s.h + l2) * o * o)
    } else {
        s.g * s.g / (s.h + l2)
    }
}

fn side_ok(s: &Sums, cfg: &TreeConfig) -> bool {
    s.n >= cfg.min_data_in_leaf && s.h >= cfg.min_sum_hessian_in_leaf
}

/// Best threshold on an ordered feature, trying the missing bin on each side.
fn best_numeric(
    f: usize,
    fb: &FeatureBins,
    hist: &[Sums],
    total: &Sums,
    cfg: &TreeConfig,
) -> Option<SplitInfo> {
    let nb = fb.num_bins;
    let value_bins = nb - 1;
    let missing = hist[nb - 1];
    let shift = score(total, cfg.lambda_l2, cfg.max_delta_step) + cfg.min_gain_to_split;
    let mut best: Option<(f64, u8, bool, Sums)> = None;
    let directions: &[bool] = if missing.n > 0 {
        &[false, true]
    } else {
        &[false]
    };
    for &missing_left in directions {
        let mut left = if missing_left {
            missing
        } else {
            Sums::default()
        };
        // With missing rows on the right, "every value left" is a real split: missing vs not.
        let last = if missing.n > 0 && !missing_left {
            value_bins
        } else {
            value_bins - 1
        };
        for (t, bin) in hist.iter().enumerate().take(last) {
            left.add(bin);
            if !side_ok(&left, cfg) {
                continue;
            }
            let right = total.minus(&left);
            if !side_ok(&right, cfg) {
                break;
            }
            let gain = score(&left, cfg.lambda_l2, cfg.max_delta_step)
                + score(&right, cfg.lambda_l2, cfg.max_delta_step);
            if gain > shift && best.is_none_or(|b| gain > b.0) {
                best = Some((gain, t as u8, missing_left, left));
            }
        }
    }
    let (gain, threshold, missing_left, left) = best?;
    let right = total.minus(&left);
    // Without missing rows in training, unseen missing values follow the bigger side.
    let default_left = if missing.n > 0 {
        missing_left
    } else {
        left.n >= right.n
    };
    Some(SplitInfo {
        feature: f,
        gain: gain - shift + cfg.min_gain_to_split,
        split: BinSplit::Numeric { threshold },
        default_left,
        left,
        right,
    })
}

/// LightGBM's categorical split: one-vs-rest for few categories, otherwise categories sorted by
/// gradient/(hessian + cat_smooth) and scanned from both ends for the best left set.
fn best_categorical(
    f: usize,
    fb: &FeatureBins,
    hist: &[Sums],
    total: &Sums,
    cfg: &TreeConfig,
) -> Option<SplitInfo> {
    let nb = fb.num_bins;
    let shift = score(total, cfg.lambda_l2, cfg.max_delta_step) + cfg.min_gain_to_split;
    let nonempty = hist.iter().filter(|s| s.n > 0).count();
    let mut best: Option<(f64, Vec<usize>, Sums)> = None;
    if nonempty <= cfg.max_cat_to_onehot {
        for (b, left) in hist.iter().enumerate().take(nb) {
            if left.n == 0 || !side_ok(left, cfg) {
                continue;
            }
            let right = total.minus(left);
            if !side_ok(&right, cfg) {
                continue;
            }
            let gain = score(left, cfg.lambda_l2, cfg.max_delta_step)
                + score(&right, cfg.lambda_l2, cfg.max_delta_step);
            if gain > shift && best.as_ref().is_none_or(|x| gain > x.0) {
                best = Some((gain, vec![b], *left));
            }
        }
    } else {
        let l2 = cfg.lambda_l2 + cfg.cat_l2;
        let mut sorted: Vec<usize> = (0..nb)
            .filter(|&b| hist[b].n as f64 >= cfg.cat_smooth)
            .collect();
        let ctr = |b: usize| hist[b].g / (hist[b].h + cfg.cat_smooth);
        sorted.sort_by(|&a, &b| ctr(a).total_cmp(&ctr(b)));
        let used = sorted.len();
        if used == 0 {
            return None;
        }
        let max_num_cat = cfg.max_cat_threshold.min(used.div_ceil(2));
        let max_threshold = max_num_cat.min(used).saturating_sub(1);
        for forward in [true, false] {
            let mut left = Sums::default();
            let mut group = 0u32;
            for i in 0..=max_threshold {
                let b = if forward {
                    sorted[i]
                } else {
                    sorted[used - 1 - i]
                };
                left.add(&hist[b]);
                group += hist[b].n;
                if !side_ok(&left, cfg) {
                    continue;
                }
                let right = total.minus(&left);
                if !side_ok(&right, cfg) || right.n < cfg.min_data_per_group {
                    break;
                }
                if group < cfg.min_data_per_group {
                    continue;
                }
                group = 0;
                let gain =
                    score(&left, l2, cfg.max_delta_step) + score(&right, l2, cfg.max_delta_step);
                if gain > shift && best.as_ref().is_none_or(|x| gain > x.0) {
                    let set = if forward {
                        sorted[..=i].to_vec()
                    } else {
                        sorted[used - 1 - i..].to_vec()
                    };
                    best = Some((gain, set, left));
                }
            }
        }
    }
    let (gain, set, left) = best?;
    let mut bits = [0u64; 4];
    for &b in &set {
        bits[b >> 6] |= 1 << (b & 63);
    }
    let default_left = bit(&bits, fb.missing_bin());
    Some(SplitInfo {
        feature: f,
        gain: gain - shift + cfg.min_gain_to_split,
        split: BinSplit::Categorical { left: bits },
        default_left,
        left,
        right: total.minus(&left),
    })
}
