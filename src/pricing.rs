//! Prices usage with a rate card: the most specific matching rate wins, effective dates and
//! graduated tiers split a row piecewise, and money is exact.
//!
//! - A row's quantity enters as its shortest decimal form (what the user sees), held to 18
//!   decimal places, converted to the rate's unit (durations convert: a price per minute
//!   applies to Hours). Price × quantity of every piece of a row is summed exactly (units of
//!   10⁻²⁷) and rounded half-to-even to 9 decimals once, at the end of the row.
//! - Rate rows with the same match values, unit, currency, validity and tier period form one
//!   ladder; `tier_from` is the cumulative quantity (in the rate's unit, per ladder and per
//!   calendar `tier_period` in UTC) at which a tier's price starts. Rows are tiered in
//!   (usage_start, row) order, so the result does not depend on the thread count.
//! - A row crossing `valid_from` / `valid_to` is split by time overlap (largest remainder, so the
//!   pieces add up to the quantity exactly) and each piece is priced by the rate valid then.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};

use rayon::prelude::*;

use crate::aggregate::{GroupIds, KeyColumn, Nullable};
use crate::error::{Error, Result};
use crate::hash::FastMap;
use crate::money::{div_round_half_even, Decimal};
use crate::time::{self, Calendar, Every};

/// The usage columns a rate can match on, in rate-card order.
pub const MATCH_COLUMNS: [&str; 8] =
    ["provider", "metric", "sku", "resource_type", "charge_type", "account_id", "customer_id", "project_id"];
const OTHER_COLUMNS: [&str; 7] =
    ["unit_price", "unit", "currency", "valid_from", "valid_to", "tier_from", "tier_period"];

/// 10¹⁸: quantities are held as integers of 10⁻¹⁸ units.
const Q: i128 = 1_000_000_000_000_000_000;

/// One ladder of rates: the rows of the card that share everything but `tier_from`.
#[derive(Debug, Clone)]
struct Ladder {
    /// (index into MATCH_COLUMNS, value) for each non-empty match column.
    matchers: Vec<(usize, String)>,
    /// The unit the price is per, if the card names one.
    unit: Option<String>,
    currency: String,
    valid_from: Option<i64>,
    valid_to: Option<i64>,
    /// The calendar of the card's `tier_period` (UTC), built once with the card.
    tier_calendar: Option<Calendar>,
    /// (tier_from in 10⁻¹⁸ rate units, price, 1-based card row), ascending.
    tiers: Vec<(i128, Decimal, usize)>,
}

impl Ladder {
    fn first_row(&self) -> usize {
        self.tiers.iter().map(|t| t.2).min().unwrap_or(0)
    }

    fn valid_at(&self, t: i64) -> bool {
        self.valid_from.is_none_or(|f| t >= f) && self.valid_to.is_none_or(|e| t < e)
    }
}

/// A parsed, validated rate card.
#[derive(Debug, Clone)]
pub struct RateCard {
    ladders: Vec<Ladder>,
}

impl RateCard {
    /// Parses a card given as text columns (`None` or "" is empty). Row numbers in errors are
    /// 1-based positions of the data rows.
    pub fn parse(columns: &[(String, Vec<Option<String>>)]) -> Result<RateCard> {
        if columns.first().is_some_and(|(_, rows)| rows.len() >= SEVERAL as usize) {
            let message = format!("a rate card holds fewer than {SEVERAL} rows");
            return Err(Error::RateCard { row: 0, message, usage_row: None });
        }
        let known = |c: &str| MATCH_COLUMNS.contains(&c) || OTHER_COLUMNS.contains(&c);
        if let Some((bad, _)) = columns.iter().find(|(c, _)| !known(c)) {
            return Err(Error::RateCard {
                row: 0,
                usage_row: None,
                message: format!(
                    "unknown column {bad:?}; a rate card has {} and {}",
                    MATCH_COLUMNS.join(", "),
                    OTHER_COLUMNS.join(", ")
                ),
            });
        }
        let col = |name: &str| columns.iter().find(|(c, _)| c == name).map(|(_, v)| v);
        let Some(prices) = col("unit_price") else {
            return Err(Error::RateCard {
                row: 0,
                message: "the card has no unit_price column".into(),
                usage_row: None,
            });
        };
        let rows = prices.len();
        let cell = |name: &str, i: usize| -> Option<&str> {
            col(name).and_then(|v| v.get(i)).and_then(|v| v.as_deref()).map(str::trim).filter(|v| !v.is_empty())
        };
        let mut ladders: Vec<Ladder> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for i in 0..rows {
            let row = i + 1;
            let err = |message: String| Error::RateCard { row, message, usage_row: None };
            let price_text = cell("unit_price", i).ok_or_else(|| err("unit_price is empty".into()))?;
            let price = Decimal::parse(price_text).map_err(|e| err(format!("unit_price {price_text:?}: {e}")))?;
            // A price finer than 10⁻⁹ would be rounded here, before the multiplication (a
            // per-byte 0.0000000004 to 0): refused, never changed silently.
            if Decimal::parse_shifted(price_text, 9).is_ok_and(|fine| fine.0 % 1_000_000_000 != 0) {
                return Err(err(format!(
                    "unit_price {price_text} has digits past the 9th decimal place, which a price cannot \
                     hold exactly: give the price per a larger unit (for example per GB instead of per byte)"
                )));
            }
            if price.is_negative() {
                return Err(err(format!("unit_price {price_text} is negative")));
            }
            let currency = cell("currency", i).unwrap_or("USD").to_string();
            if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(err(format!("currency {currency:?} is not an ISO 4217 code such as USD")));
            }
            let when = |name: &str| -> Result<Option<i64>> {
                cell(name, i)
                    .map(|t| time::parse_rfc3339(t).map_err(|why| err(format!("{name} {t:?}: {why}"))))
                    .transpose()
            };
            let (valid_from, valid_to) = (when("valid_from")?, when("valid_to")?);
            if let (Some(f), Some(t)) = (valid_from, valid_to) {
                if t <= f {
                    return Err(err("valid_to is not after valid_from".into()));
                }
            }
            let tier_from = match cell("tier_from", i) {
                None => 0,
                Some(t) => {
                    let d = parse_quantity(t).ok_or_else(|| err(format!("tier_from {t:?} is not a number")))?;
                    if d < 0 {
                        return Err(err(format!("tier_from {t} is negative")));
                    }
                    d
                }
            };
            let tier_period = cell("tier_period", i)
                .map(|p| match Every::parse(p).map_err(|e| err(format!("tier_period: {e}")))? {
                    Every::SubDay(_) => Err(err(format!("tier_period {p:?}: tiers reset per day or longer"))),
                    e => Ok(e),
                })
                .transpose()?;
            let matchers: Vec<(usize, String)> =
                MATCH_COLUMNS.iter().enumerate().filter_map(|(k, c)| cell(c, i).map(|v| (k, v.to_string()))).collect();
            let unit = cell("unit", i).map(str::to_string);
            let key = format!("{matchers:?}|{unit:?}|{currency}|{valid_from:?}|{valid_to:?}|{tier_period:?}");
            let l = *index.entry(key).or_insert_with(|| {
                ladders.push(Ladder {
                    matchers,
                    unit,
                    currency,
                    valid_from,
                    valid_to,
                    tier_calendar: tier_period.and_then(|every| Calendar::new(every, "UTC").ok()),
                    tiers: Vec::new(),
                });
                ladders.len() - 1
            });
            if let Some(same) = ladders[l].tiers.iter().find(|t| t.0 == tier_from) {
                return Err(err(format!(
                    "it repeats row {} (same match, unit, currency, validity and tier_from)",
                    same.2
                )));
            }
            ladders[l].tiers.push((tier_from, price, row));
        }
        for l in &mut ladders {
            l.tiers.sort_by_key(|t| t.0);
            if l.tiers[0].0 != 0 {
                return Err(Error::RateCard {
                    row: l.tiers[0].2,
                    message: "the lowest tier of its ladder must start at tier_from 0 (or be empty)".into(),
                    usage_row: None,
                });
            }
        }
        Ok(RateCard { ladders })
    }
}

impl RateCard {
    /// Indices into MATCH_COLUMNS of the columns some rate matches on.
    pub fn used_columns(&self) -> Vec<usize> {
        let mut used: Vec<usize> = self.ladders.iter().flat_map(|l| l.matchers.iter().map(|(k, _)| *k)).collect();
        used.sort_unstable();
        used.dedup();
        used
    }
}

/// Parses a decimal quantity to 10⁻¹⁸ units (half-even past 18 places): the money parser
/// (9 places) reading it times 10⁹.
fn parse_quantity(text: &str) -> Option<i128> {
    Decimal::parse_shifted(text, 9).ok().map(|d| d.0)
}

/// An f64 quantity as 10⁻¹⁸ units, via its shortest decimal form.
fn quantity_q18(q: f64) -> Option<i128> {
    if !q.is_finite() {
        return None;
    }
    let mut buf = ryu::Buffer::new();
    parse_quantity(buf.format_finite(q))
}

/// How many rate units one usage unit is, as (num, den); `None` when the units don't mix.
fn unit_factor(usage_unit: Option<&str>, rate_unit: Option<&str>) -> Option<(i128, i128)> {
    let Some(r) = rate_unit else { return Some((1, 1)) };
    let u = usage_unit?;
    if u.eq_ignore_ascii_case(r) {
        return Some((1, 1));
    }
    let ((un, ud), (rn, rd)) = (time::hours_per(u)?, time::hours_per(r)?);
    Some((un * rd, ud * rn))
}

/// The columns `price` reads; all of one length. Match columns are encoded once.
pub struct PricingInput<'a> {
    pub usage_start: Nullable<'a, i64>,
    pub usage_end: Nullable<'a, i64>,
    pub quantity: Nullable<'a, f64>,
    pub cost: Nullable<'a, i128>,
    pub billable: Nullable<'a, bool>,
    pub unit: &'a KeyColumn,
    /// One per MATCH_COLUMNS entry, in that order.
    pub matches: &'a [KeyColumn],
}

#[derive(Debug, Clone, Copy)]
pub struct PricingOptions {
    pub overwrite: bool,
    pub billable_only: bool,
}

/// What happened to each row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Outcome {
    Priced,
    /// The provider's cost was kept (no `overwrite`).
    ProviderCost,
    NoRate,
    NotBillable,
    NoQuantity,
}

/// Every outcome, each at the index of its discriminant (`outcome as usize`).
pub const OUTCOMES: [Outcome; 5] =
    [Outcome::Priced, Outcome::ProviderCost, Outcome::NoRate, Outcome::NotBillable, Outcome::NoQuantity];

impl Outcome {
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Priced => "priced",
            Outcome::ProviderCost => "provider_cost",
            Outcome::NoRate => "no_rate",
            Outcome::NotBillable => "not_billable",
            Outcome::NoQuantity => "no_quantity",
        }
    }
}

/// Per row: the rate-card cost, unit price and currency (when priced), and the outcome. A
/// value is there where its `*_valid` flag is set (0 otherwise), so each column is handed to
/// the frame as it is.
#[derive(Debug, Default)]
pub struct Priced {
    pub cost: Vec<i128>,
    pub cost_valid: Vec<bool>,
    pub unit_price: Vec<i128>,
    pub unit_price_valid: Vec<bool>,
    /// Index into `currencies`, where `cost_valid` (a priced row has a currency).
    pub currency: Vec<u32>,
    pub currencies: Vec<String>,
    pub outcome: Vec<Outcome>,
    /// The card's data rows (from 1) that priced no usage row, ascending.
    pub unused_rows: Vec<usize>,
}

/// A row's running price: the exact sum of its priced pieces and which price(s) applied.
/// 32 bytes, one per usage row (ladders and card rows fit 32 bits: `RateCard::parse`).
#[derive(Debug, Default, Clone, Copy)]
struct RowState {
    numerator: i128,
    /// The ladder and card row of the price, `SEVERAL` as the row when several applied.
    used: Option<(u32, u32)>,
}

/// The card row of a row priced by several tiers or rates (no card row is this large).
const SEVERAL: u32 = u32::MAX;

impl RowState {
    fn add(&mut self, row: usize, ladder: usize, numerator: i128, tier_row: usize) -> Result<()> {
        self.numerator = self
            .numerator
            .checked_add(numerator)
            .ok_or_else(|| Error::Column(format!("row {row}: cost is out of range for decimal(38, 9)")))?;
        let (ladder, tier_row) = (ladder as u32, u32::try_from(tier_row).unwrap_or(SEVERAL));
        self.used = Some(match self.used {
            None => (ladder, tier_row),
            Some((l, t)) if t == tier_row && l == ladder => (l, t),
            Some((l, _)) => (l, SEVERAL),
        });
        Ok(())
    }
}

/// A priced piece: (row, ladder, price × quantity in units of 10⁻²⁷, card row of its price).
type PricedPiece = (usize, usize, i128, usize);

/// A ladder that can match a profile, with the usage-to-rate unit factor (num, den).
type Candidate = (usize, (i128, i128));

/// A piece of a row for one ladder: `q` in 10⁻¹⁸ rate units starting at time `at`.
#[derive(Debug, Clone, Copy)]
struct Piece {
    row: usize,
    ladder: usize,
    at: i64,
    q: i128,
}

/// Prices every row with the card. Rows that keep their provider cost, are not billable or
/// have no quantity are left as they are (their outcome says why).
pub fn price(input: &PricingInput, card: &RateCard, options: PricingOptions) -> Result<Priced> {
    const CHUNK: usize = 1 << 14;
    let rows = input.usage_start.values.len();
    let candidates = profile_candidates(input, card);
    let mut out = Priced {
        cost: vec![0; rows],
        cost_valid: vec![false; rows],
        unit_price: vec![0; rows],
        unit_price_valid: vec![false; rows],
        currency: vec![0; rows],
        currencies: card.ladders.iter().map(|l| l.currency.clone()).collect(),
        outcome: vec![Outcome::NoRate; rows],
        unused_rows: Vec::new(),
    };
    // Which ladders priced a row (set once each; read at the end for `unused_rows`).
    let used: Vec<AtomicBool> = card.ladders.iter().map(|_| AtomicBool::new(false)).collect();
    // 1. In parallel, each row: its outcome and its pieces (per validity window). A piece on a
    // single-price ladder is priced at once, and a row priced only by such pieces is finished
    // here; a row with a piece on a tiered ladder waits for step 2, with its priced part.
    let Priced { cost, cost_valid, unit_price, unit_price_valid, currency, outcome, .. } = &mut out;
    let chunks: Vec<Result<StepOne>> = outcome
        .par_chunks_mut(CHUNK)
        .zip(cost.par_chunks_mut(CHUNK).zip(cost_valid.par_chunks_mut(CHUNK)))
        .zip(unit_price.par_chunks_mut(CHUNK).zip(unit_price_valid.par_chunks_mut(CHUNK)))
        .zip(currency.par_chunks_mut(CHUNK))
        .enumerate()
        .map(|(c, (((outcomes, (cost, cost_valid)), (price, price_valid)), currency))| {
            crate::cancel::check()?;
            let mut pieces = Vec::new();
            let (mut tiered, mut waiting) = (Vec::new(), Vec::new());
            for (j, o) in outcomes.iter_mut().enumerate() {
                let i = c * CHUNK + j;
                *o = row_pieces(input, card, &candidates, options, i, &mut pieces)?;
                for p in &pieces {
                    if !used[p.ladder].load(Ordering::Relaxed) {
                        used[p.ladder].store(true, Ordering::Relaxed);
                    }
                }
                let mut state = RowState::default();
                let mut waits = false;
                for &p in &pieces {
                    let tiers = &card.ladders[p.ladder].tiers;
                    if tiers.len() == 1 {
                        let num = p.q.checked_mul(tiers[0].1 .0).ok_or_else(|| out_of_range(i))?;
                        state.add(i, p.ladder, num, tiers[0].2)?;
                    } else {
                        tiered.push(p);
                        waits = true;
                    }
                }
                if waits {
                    waiting.push((i, state));
                } else if let Some(done) = finish(input, card, i, *o, &state) {
                    (cost[j], cost_valid[j], currency[j]) = (done.cost, true, done.currency);
                    if let Some(p) = done.unit_price {
                        (price[j], price_valid[j]) = (p, true);
                    }
                }
            }
            Ok((tiered, waiting))
        })
        .collect();
    let (mut tiered, mut waiting): (Vec<Piece>, Vec<(usize, RowState)>) = (Vec::new(), Vec::new());
    for c in chunks {
        let (t, w) = c?;
        tiered.extend(t);
        waiting.extend(w);
    }
    out.unused_rows = unused_rows(card, &used);
    if waiting.is_empty() {
        return Ok(out);
    }
    // 2. Tiered ladders need order: group their pieces by (ladder, tier period) and walk each
    // group in (usage_start, row) order; groups run in parallel.
    let mut groups: FastMap<(usize, i64), Vec<Piece>> = FastMap::default();
    for p in tiered {
        let period = card.ladders[p.ladder].tier_calendar.as_ref().map_or(0, |cal| cal.bucket_start(p.at));
        groups.entry((p.ladder, period)).or_default().push(p);
    }
    let priced: Vec<Result<Vec<PricedPiece>>> = groups
        .into_par_iter()
        .map(|(k, mut group)| {
            group.sort_by_key(|p| (p.at, p.row));
            let tiers = &card.ladders[k.0].tiers;
            let mut cumulative: i128 = 0;
            let mut out = Vec::with_capacity(group.len());
            for p in group {
                let (num, tier_row) = tiered_numerator(tiers, cumulative, p.q).ok_or_else(|| out_of_range(p.row))?;
                cumulative += p.q;
                out.push((p.row, k.0, num, tier_row));
            }
            Ok(out)
        })
        .collect();
    // `waiting` is in row order (chunks were collected in order).
    for group in priced {
        for (row, ladder, num, tier_row) in group? {
            // Every tiered piece's row waits (step 1); anything else is a bug, said as one.
            let w = waiting.binary_search_by_key(&row, |(r, _)| *r).map_err(|_| {
                Error::Column(format!("row {row}: internal error: a tiered row was not kept for step 2"))
            })?;
            waiting[w].1.add(row, ladder, num, tier_row)?;
        }
    }
    // 3. The rows that waited are finished now.
    let finished: Vec<(usize, Option<Finished>)> =
        waiting.par_iter().map(|(i, state)| (*i, finish(input, card, *i, out.outcome[*i], state))).collect();
    for (i, done) in finished {
        if let Some(done) = done {
            (out.cost[i], out.cost_valid[i], out.currency[i]) = (done.cost, true, done.currency);
            if let Some(p) = done.unit_price {
                (out.unit_price[i], out.unit_price_valid[i]) = (p, true);
            }
        }
    }
    Ok(out)
}

/// The card rows of the ladders that priced nothing (every tier of such a ladder).
fn unused_rows(card: &RateCard, used: &[AtomicBool]) -> Vec<usize> {
    let mut rows: Vec<usize> = card
        .ladders
        .iter()
        .zip(used)
        .filter(|(_, u)| !u.load(Ordering::Relaxed))
        .flat_map(|(l, _)| l.tiers.iter().map(|t| t.2))
        .collect();
    rows.sort_unstable();
    rows
}

/// What step 1 leaves of a chunk for step 2: pieces on tiered ladders, and the rows waiting
/// for them with what they have so far.
type StepOne = (Vec<Piece>, Vec<(usize, RowState)>);

/// A priced row's cost, unit price and currency.
struct Finished {
    cost: i128,
    unit_price: Option<i128>,
    currency: u32,
}

/// Rounds a priced row once; the unit price is the rate's, per the row's unit, or the
/// effective average when several prices applied. `None` for a row that was not priced.
fn finish(input: &PricingInput, card: &RateCard, i: usize, outcome: Outcome, state: &RowState) -> Option<Finished> {
    let (ladder, tier_row) = state.used.filter(|_| outcome == Outcome::Priced)?;
    let l = card.ladders.get(ladder as usize)?;
    let cost = div_round_half_even(state.numerator, Q).unwrap_or(0);
    let unit_price = match l.tiers.iter().find(|t| t.2 == tier_row as usize) {
        Some(tier) => {
            let unit = input.unit.values[input.unit.codes[i] as usize].as_deref();
            let (num, den) = unit_factor(unit, l.unit.as_deref()).unwrap_or((1, 1));
            tier.1 .0.checked_mul(num).and_then(|n| div_round_half_even(n, den))
        }
        // Several prices: the effective average per unit of the row.
        None => match input.quantity.get(i).and_then(quantity_q18) {
            Some(q) if q != 0 => cost.checked_mul(Q).and_then(|n| div_round_half_even(n, q)),
            _ => None,
        },
    };
    Some(Finished { cost, unit_price, currency: ladder })
}

fn out_of_range(row: usize) -> Error {
    Error::Column(format!("row {row}: quantity × price is out of range for decimal(38, 9)"))
}

/// Σ price × part over the tiers that `q` spans from `cumulative` (units of 10⁻²⁷), and the
/// card row of the price (`usize::MAX` when several tiers applied).
fn tiered_numerator(tiers: &[(i128, Decimal, usize)], cumulative: i128, q: i128) -> Option<(i128, usize)> {
    let (from, to) = (cumulative, cumulative.checked_add(q)?);
    // The tier that `from` falls in prices a zero quantity.
    let mut row = tiers.iter().rev().find(|t| t.0 <= from).map_or(tiers[0].2, |t| t.2);
    let mut num: i128 = 0;
    let mut parts = 0;
    for (t, tier) in tiers.iter().enumerate() {
        let lo = tier.0.max(from);
        let hi = tiers.get(t + 1).map_or(to, |next| next.0.min(to));
        if hi > lo {
            num = num.checked_add((hi - lo).checked_mul(tier.1 .0)?)?;
            parts += 1;
            row = tier.2;
        }
    }
    Some((num, if parts > 1 { usize::MAX } else { row }))
}

/// For each distinct profile of the rows — their unit and the values of the match columns
/// that some rate uses — the ladders that could match it, most specific first, ignoring time.
/// Rows look their profile up instead of scanning the card.
struct Candidates<'i> {
    /// A row's profile: the id of its unit and used match columns' codes.
    profiles: GroupIds<'i>,
    /// Profile → index into `lists`.
    slots: Slots,
    lists: Vec<Vec<Candidate>>,
}

/// Up to this many profiles are looked up in a table rather than a map.
const DENSE_PROFILES: u64 = 1 << 20;
/// A slot no profile of the rows has.
const NO_SLOT: u32 = u32::MAX;

enum Slots {
    Dense(Vec<u32>),
    Sparse(FastMap<u64, u32>),
}

impl Candidates<'_> {
    /// The candidate ladders of row `i`.
    fn of(&self, i: usize) -> &[Candidate] {
        let p = self.profiles.of_row(i);
        let slot = match &self.slots {
            Slots::Dense(table) => table.get(p as usize).copied().unwrap_or(NO_SLOT),
            Slots::Sparse(map) => map.get(&p).copied().unwrap_or(NO_SLOT),
        };
        self.lists.get(slot as usize).map_or(&[], Vec::as_slice)
    }
}

fn profile_candidates<'i>(input: &PricingInput<'i>, card: &RateCard) -> Candidates<'i> {
    let columns = std::iter::once(input.unit).chain(card.used_columns().into_iter().map(|k| &input.matches[k]));
    let rows = input.usage_start.values.len();
    let profiles = GroupIds::new(columns.collect(), rows);
    let dense = profiles.count() <= DENSE_PROFILES;
    // The first row of each profile stands for it.
    let firsts: Vec<(u64, usize)> = if dense {
        let mut first = vec![usize::MAX; profiles.count() as usize];
        for i in 0..rows {
            let slot = &mut first[profiles.of_row(i) as usize];
            if *slot == usize::MAX {
                *slot = i;
            }
        }
        first.iter().enumerate().filter(|(_, i)| **i != usize::MAX).map(|(p, i)| (p as u64, *i)).collect()
    } else {
        let mut first: FastMap<u64, usize> = FastMap::default();
        for i in 0..rows {
            first.entry(profiles.of_row(i)).or_insert(i);
        }
        first.into_iter().collect()
    };
    let lists = firsts
        .par_iter()
        .map(|&(_, i)| {
            let unit = input.unit.values[input.unit.codes[i] as usize].as_deref();
            let mut list: Vec<Candidate> = card
                .ladders
                .iter()
                .enumerate()
                .filter(|(_, l)| {
                    l.matchers.iter().all(|(k, v)| {
                        let col = &input.matches[*k];
                        col.values[col.codes[i] as usize].as_deref() == Some(v.as_str())
                    })
                })
                .filter_map(|(n, l)| unit_factor(unit, l.unit.as_deref()).map(|f| (n, f)))
                .collect();
            list.sort_by_key(|(n, _)| std::cmp::Reverse(card.ladders[*n].matchers.len()));
            list
        })
        .collect();
    let slots = if dense {
        let mut table = vec![NO_SLOT; profiles.count() as usize];
        firsts.iter().enumerate().for_each(|(slot, (p, _))| table[*p as usize] = slot as u32);
        Slots::Dense(table)
    } else {
        Slots::Sparse(firsts.iter().enumerate().map(|(slot, (p, _))| (*p, slot as u32)).collect())
    };
    Candidates { profiles, slots, lists }
}

fn row_pieces(
    input: &PricingInput,
    card: &RateCard,
    candidates: &Candidates,
    options: PricingOptions,
    i: usize,
    pieces: &mut Vec<Piece>,
) -> Result<Outcome> {
    pieces.clear();
    if options.billable_only && input.billable.get(i) == Some(false) {
        return Ok(Outcome::NotBillable);
    }
    if !options.overwrite && input.cost.get(i).is_some() {
        return Ok(Outcome::ProviderCost);
    }
    let Some(q) = input.quantity.get(i).and_then(quantity_q18) else {
        return Ok(Outcome::NoQuantity);
    };
    let start = input.usage_start.get(i).ok_or_else(|| Error::Column(format!("usage_start is null in row {i}")))?;
    let end = input.usage_end.get(i).unwrap_or(start).max(start);
    let list = candidates.of(i);
    if list.is_empty() {
        return Ok(Outcome::NoRate);
    }
    let inside = |t: &i64| *t > start && *t < end;
    let boundaries = |n: &usize| [card.ladders[*n].valid_from, card.ladders[*n].valid_to];
    if !list.iter().any(|(n, _)| boundaries(n).iter().flatten().any(inside)) {
        // The common case: one validity window covers the whole row.
        return match best_rate(card, list, start, i)? {
            None => Ok(Outcome::NoRate),
            Some(&(ladder, (num, den))) => {
                pieces.push(Piece { row: i, ladder, at: start, q: to_rate_unit(q, num, den, i)? });
                Ok(Outcome::Priced)
            }
        };
    }
    // Split [start, end) at every validity boundary of the candidates inside it.
    let mut cuts: Vec<i64> = list.iter().flat_map(|(n, _)| boundaries(n)).flatten().filter(inside).collect();
    cuts.sort_unstable();
    cuts.dedup();
    let bounds: Vec<i64> = std::iter::once(start).chain(cuts).chain(std::iter::once(end)).collect();
    let spans: Vec<i64> = bounds.windows(2).map(|w| w[1] - w[0]).collect();
    for (w, share) in bounds.windows(2).zip(split_exact(q, &spans)) {
        let Some(&(ladder, (num, den))) = best_rate(card, list, w[0], i)? else {
            pieces.clear();
            return Ok(Outcome::NoRate);
        };
        pieces.push(Piece { row: i, ladder, at: w[0], q: to_rate_unit(share, num, den, i)? });
    }
    Ok(Outcome::Priced)
}

/// The most specific candidate valid at `at`; two equally specific ones are an error.
fn best_rate<'c>(card: &RateCard, list: &'c [Candidate], at: i64, row: usize) -> Result<Option<&'c Candidate>> {
    let mut valid = list.iter().filter(|(n, _)| card.ladders[*n].valid_at(at));
    let Some(best) = valid.next() else { return Ok(None) };
    let top = card.ladders[best.0].matchers.len();
    if let Some(tie) = valid.find(|(n, _)| card.ladders[*n].matchers.len() == top) {
        let (a, b) = (card.ladders[best.0].first_row(), card.ladders[tie.0].first_row());
        let (a, b) = (a.min(b), a.max(b));
        return Err(Error::RateCard {
            row: a,
            message: format!("rows {a} and {b} match usage row {row} equally well ({top} match columns each)"),
            usage_row: Some(row),
        });
    }
    Ok(Some(best))
}

/// A quantity in 10⁻¹⁸ usage units as 10⁻¹⁸ rate units.
fn to_rate_unit(q: i128, num: i128, den: i128, row: usize) -> Result<i128> {
    if num == den {
        return Ok(q);
    }
    q.checked_mul(num).and_then(|n| div_round_half_even(n, den)).ok_or_else(|| overflow(row))
}

fn overflow(i: usize) -> Error {
    Error::Column(format!("row {i}: quantity is out of range for pricing"))
}

/// Splits `q` in proportion to `spans` so the parts add up to `q` exactly (largest remainder).
fn split_exact(q: i128, spans: &[i64]) -> Vec<i128> {
    let total: i128 = spans.iter().map(|s| *s as i128).sum();
    if spans.len() <= 1 || total == 0 {
        let mut v = vec![0; spans.len().max(1)];
        v[0] = q;
        return v;
    }
    let (sign, m) = (q.signum(), q.abs());
    let mut parts: Vec<i128> = spans.iter().map(|s| m / total * *s as i128 + m % total * *s as i128 / total).collect();
    let mut rema: Vec<(i128, usize)> =
        spans.iter().enumerate().map(|(j, s)| (m % total * *s as i128 % total, j)).collect();
    rema.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let left = (m - parts.iter().sum::<i128>()) as usize;
    for &(_, j) in rema.iter().take(left) {
        parts[j] += 1;
    }
    parts.iter_mut().for_each(|p| *p *= sign);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantities_parse_to_18_places() {
        assert_eq!(quantity_q18(10.266666666666667), Some(10_266_666_666_666_667_000));
        assert_eq!(quantity_q18(1.5), Some(15 * Q / 10));
        assert_eq!(quantity_q18(1e-20), Some(0));
        assert_eq!(parse_quantity("1000"), Some(1000 * Q));
        assert_eq!(parse_quantity("2.5e-3"), Some(25 * Q / 10_000));
        assert_eq!(parse_quantity("1.0000000000000000005"), Some(Q));
        assert_eq!(parse_quantity("1.0000000000000000015"), Some(Q + 2));
        assert_eq!(parse_quantity("1e20"), None);
        assert_eq!(parse_quantity("1e"), None);
    }

    #[test]
    fn outcomes_sit_at_their_discriminants() {
        for (i, o) in OUTCOMES.iter().enumerate() {
            assert_eq!(*o as usize, i, "{}", o.name());
        }
    }

    #[test]
    fn unit_factors() {
        assert_eq!(unit_factor(Some("Hours"), Some("minute")), Some((60, 1)));
        assert_eq!(unit_factor(Some("Hours"), Some("day")), Some((1, 24)));
        assert_eq!(unit_factor(Some("GB"), Some("gb")), Some((1, 1)));
        assert_eq!(unit_factor(Some("GB"), Some("Hours")), None);
        assert_eq!(unit_factor(None, None), Some((1, 1)));
    }

    #[test]
    fn tiers_split_by_quantity() {
        let tiers = vec![(0, Decimal::parse("1").unwrap(), 1), (10 * Q, Decimal::parse("0.5").unwrap(), 2)];
        // 4 units from 8: 2 at 1.00 and 2 at 0.50 = 3.
        let (num, row) = tiered_numerator(&tiers, 8 * Q, 4 * Q).unwrap();
        assert_eq!(div_round_half_even(num, Q), Some(3_000_000_000));
        assert_eq!(row, usize::MAX);
        assert_eq!(tiered_numerator(&tiers, 12 * Q, Q).unwrap().1, 2);
    }

    #[test]
    fn exact_split_adds_up() {
        assert_eq!(split_exact(10, &[1, 1, 1]), vec![4, 3, 3]);
        assert_eq!(split_exact(-10, &[2, 1]), vec![-7, -3]);
    }
}
