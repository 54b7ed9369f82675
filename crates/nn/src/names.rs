//! The 1990 US Census surnames bundled with this crate (`data/surnames.txt`, 88,799 names,
//! lowercase `a`-`z`; source and terms in `data/README.md`), and their encoding for a
//! character-level language model: each name is read as its letters then an end mark `.`,
//! each character predicted from the `context` characters before it (`.` before the start,
//! as in the makemore tutorial).

use tapegrad::{Float, Tape, Tensor, TorchRng, DEFAULT_IGNORE_INDEX};

use crate::{Embedding, Flatten, Linear, Sequential, Tanh};

/// The alphabet: the end mark `.` (index 0) then `a`..`z` (1..=26).
pub const ALPHABET: usize = 27;

/// The surnames, most frequent first, as the Census lists them.
pub fn surnames() -> Vec<&'static str> {
    include_str!("../data/surnames.txt").lines().collect()
}

/// The index of a character: 0 for `.`, 1..=26 for `a`..=`z`.
///
/// # Panics
/// For any other character.
pub fn char_index(c: u8) -> usize {
    match c {
        b'.' => 0,
        b'a'..=b'z' => usize::from(c - b'a') + 1,
        _ => panic!("names: {:?} is not in the alphabet . a-z", char::from(c)),
    }
}

/// The character of an index of [`ALPHABET`].
pub fn index_char(i: usize) -> char {
    if i == 0 {
        '.'
    } else {
        char::from(b'a' + (i - 1) as u8)
    }
}

/// The makemore tutorial's MLP language model on contexts `[B, T, context]`:
/// `Embedding(27, embed), Flatten(2), Linear(context·embed, hidden), Tanh,
/// Linear(hidden, 27)`, logits `[B, T, 27]`, initialised from `rng` as PyTorch's modules
/// (`nn.Embedding`, `nn.Linear`) after the same `torch.manual_seed`.
pub fn char_mlp<T: Float>(
    tape: &Tape<T>,
    context: usize,
    embed: usize,
    hidden: usize,
    rng: &mut TorchRng,
) -> Sequential<T> {
    Sequential::new(vec![
        Box::new(Embedding::new(tape, ALPHABET, embed, rng)),
        Box::new(Flatten::new(2)),
        Box::new(Linear::new(tape, context * embed, hidden, rng)),
        Box::new(Tanh),
        Box::new(Linear::new(tape, hidden, ALPHABET, rng)),
    ])
}

/// The lengths `torch.utils.data.random_split(n items, fractions)` gives: each
/// `floor(fraction · n)`, then the remainder handed out one by one from the first.
pub fn split_lengths(n: usize, fractions: &[f64]) -> Vec<usize> {
    let mut lengths: Vec<usize> = fractions.iter().map(|f| (f * n as f64).floor() as usize).collect();
    let rest = n - lengths.iter().sum::<usize>();
    let parts = lengths.len();
    for i in 0..rest {
        lengths[i % parts] += 1;
    }
    lengths
}

/// The indices of `n` items split as `torch.utils.data.random_split(range(n), fractions,
/// generator=torch.Generator().manual_seed(seed))`: a permutation (`torch.randperm`)
/// cut into [`split_lengths`].
pub fn random_split(n: usize, fractions: &[f64], seed: u64) -> Vec<Vec<usize>> {
    let perm = TorchRng::manual_seed(seed).randperm(n);
    let mut start = 0;
    split_lengths(n, fractions)
        .into_iter()
        .map(|l| {
            start += l;
            perm[start - l..start].to_vec()
        })
        .collect()
}

/// A batch of names encoded for a language model with `context` characters: contexts
/// `[B, T, context]` and targets `[B, T]` (values of the element type), `T` the longest
/// name's length plus one (its end mark); positions after a name's end mark are padding,
/// context 0 and target -100 (`ignore_index`). The buffers are kept from batch to batch,
/// so once they have grown, encoding allocates nothing.
#[derive(Clone, Debug)]
pub struct NameBatch<T: Float> {
    /// Contexts `[B, T, context]`.
    pub contexts: Tensor<T>,
    /// Targets `[B, T]`.
    pub targets: Tensor<T>,
    /// Loss tokens (targets that are not padding).
    pub tokens: usize,
}

impl<T: Float> Default for NameBatch<T> {
    fn default() -> Self {
        NameBatch { contexts: Tensor::zeros(&[0, 0, 0]), targets: Tensor::zeros(&[0, 0]), tokens: 0 }
    }
}

impl<T: Float> NameBatch<T> {
    /// Encodes `names` (lowercase `a`-`z`) with `context` characters of context.
    ///
    /// # Panics
    /// If a name holds a character outside `a`-`z`.
    pub fn fill<'a>(&mut self, names: impl Iterator<Item = &'a str> + Clone, context: usize) {
        let b = names.clone().count();
        let t = names.clone().map(|n| n.len() + 1).max().unwrap_or(1);
        let mut ctx = std::mem::replace(&mut self.contexts, Tensor::zeros(&[0])).into_vec();
        let mut tgt = std::mem::replace(&mut self.targets, Tensor::zeros(&[0])).into_vec();
        ctx.clear();
        ctx.resize(b * t * context, T::ZERO);
        tgt.clear();
        tgt.resize(b * t, T::from_f64(DEFAULT_IGNORE_INDEX as f64));
        let mut tokens = 0;
        for (i, name) in names.enumerate() {
            let chars = name.bytes().map(char_index).chain([0]);
            for (j, c) in chars.enumerate() {
                tgt[i * t + j] = T::from_usize(c);
                let row = &mut ctx[(i * t + j) * context..(i * t + j + 1) * context];
                // the `context` characters before position j, `.` before the start
                for (m, v) in row.iter_mut().enumerate() {
                    let back = context - m; // 1..=context characters back
                    *v = if j >= back { T::from_usize(char_index(name.as_bytes()[j - back])) } else { T::ZERO };
                }
                tokens += 1;
            }
        }
        self.contexts = Tensor::new(ctx, &[b, t, context]);
        self.targets = Tensor::new(tgt, &[b, t]);
        self.tokens = tokens;
    }
}
