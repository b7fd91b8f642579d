//! Shopping sessions for the user topic `ecommerce.events`.
//!
//! Many sessions are open at once; every record advances one of them, picked at random, by
//! one step of the funnel `product_viewed → added_to_cart → checkout_started → purchase`
//! (with `removed_from_cart` and wandering back to browsing along the way). Most sessions
//! leave before buying, and how many get how far depends on the user's segment: `vip`
//! users convert far more than `new` ones. Everything is a pure function of the seed and of
//! the `now_ms` values passed in.
//!
//! The generator keeps the ground truth of what it produced per session
//! ([`EcommerceTruth`]): the aggregates the product's stream SQL
//! (`COUNT(*)`, `MAX(cart_total)`, `SUM(CASE WHEN event_type = 'purchase' …)`,
//! `LATEST_BY_OFFSET(user_id)` grouped by `session_id`) must arrive at.

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::generator::{lognormal, splitmix64};

/// The topic the scenario writes to by default.
pub const TOPIC: &str = "ecommerce.events";

/// The funnel's event types, in funnel order.
pub const EVENT_TYPES: [&str; 5] = [
    "product_viewed",
    "added_to_cart",
    "removed_from_cart",
    "checkout_started",
    "purchase",
];

/// Sessions can never be longer than this many events (a long one is cut off: the user
/// leaves).
pub const MAX_SESSION_EVENTS: u32 = 60;

/// What the shopping generator produces.
#[derive(Clone, Debug, PartialEq)]
pub struct EcommerceConfig {
    /// Prefix of every `event_id` (`{run_id}-{seq}`) and `session_id` (`{run_id}-s{n}`).
    pub run_id: String,
    /// Sessions open at once (at least 1); records interleave among them.
    pub concurrent_sessions: usize,
    /// Distinct users (at least 1); a user keeps one segment across sessions.
    pub users: u32,
}

impl Default for EcommerceConfig {
    fn default() -> Self {
        Self {
            run_id: "shop".to_owned(),
            concurrent_sessions: 200,
            users: 5_000,
        }
    }
}

/// One record value of `ecommerce.events`.
///
/// For `checkout_started` and `purchase`, `product_id`, `category` and `price` describe the
/// line last added to the cart and `quantity` is the number of units in the cart.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EcommerceEvent {
    /// `{run_id}-{seq}`.
    pub event_id: String,
    /// `{run_id}-s{n}`; also the record key.
    pub session_id: String,
    /// `u00042`.
    pub user_id: String,
    /// One of [`EVENT_TYPES`].
    pub event_type: String,
    /// `p0123`.
    pub product_id: String,
    /// The product's category.
    pub category: String,
    /// Unit price, in dollars (whole cents).
    pub price: f64,
    /// Units.
    pub quantity: u32,
    /// The session's cart value after this event, in dollars (whole cents, never negative).
    pub cart_total: f64,
    /// `new`, `returning` or `vip`.
    pub user_segment: String,
    /// `mobile`, `desktop` or `tablet`.
    pub device: String,
    /// ISO 3166 alpha-2.
    pub country: String,
    /// Epoch milliseconds.
    pub timestamp: i64,
}

/// What one session should aggregate to.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SessionTruth {
    /// The session's user (constant over the session, so also its latest).
    pub user_id: String,
    /// The user's segment.
    pub user_segment: String,
    /// Records of the session.
    pub events_count: u64,
    /// Largest `cart_total` of its records.
    pub cart_value: f64,
    /// Its `purchase` records (0 or 1).
    pub purchase_count: u64,
    /// Type of its last record.
    pub last_event_type: String,
}

/// Ground truth of the shopping scenario.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EcommerceTruth {
    /// The topic written.
    pub topic: String,
    /// Records produced.
    pub records: u64,
    /// Records per event type.
    pub event_counts: BTreeMap<String, u64>,
    /// Per `session_id`.
    pub sessions: BTreeMap<String, SessionTruth>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Segment {
    New,
    Returning,
    Vip,
}

impl Segment {
    fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Returning => "returning",
            Self::Vip => "vip",
        }
    }
    /// Chance of adding a viewed product to the cart.
    fn p_add(self) -> f64 {
        match self {
            Self::New => 0.07,
            Self::Returning => 0.12,
            Self::Vip => 0.22,
        }
    }
    /// Chance of going to checkout after a cart change.
    fn p_checkout(self) -> f64 {
        match self {
            Self::New => 0.22,
            Self::Returning => 0.32,
            Self::Vip => 0.5,
        }
    }
    /// Chance of paying once at checkout.
    fn p_purchase(self) -> f64 {
        match self {
            Self::New => 0.55,
            Self::Returning => 0.7,
            Self::Vip => 0.88,
        }
    }
}

struct Category {
    name: &'static str,
    /// Median price, dollars.
    median: f64,
}

const CATEGORIES: [Category; 8] = [
    Category {
        name: "electronics",
        median: 180.0,
    },
    Category {
        name: "books",
        median: 16.0,
    },
    Category {
        name: "clothing",
        median: 40.0,
    },
    Category {
        name: "home",
        median: 60.0,
    },
    Category {
        name: "beauty",
        median: 22.0,
    },
    Category {
        name: "sports",
        median: 55.0,
    },
    Category {
        name: "toys",
        median: 28.0,
    },
    Category {
        name: "grocery",
        median: 9.0,
    },
];

const PRODUCTS: usize = 400;
const DEVICES: [(&str, u32); 3] = [("mobile", 58), ("desktop", 36), ("tablet", 6)];
const COUNTRIES: [(&str, u32); 8] = [
    ("US", 40),
    ("GB", 12),
    ("DE", 11),
    ("FR", 9),
    ("IN", 10),
    ("BR", 7),
    ("JP", 6),
    ("CA", 5),
];

struct Product {
    category: usize,
    cents: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Last {
    Viewed(usize),
    CartChanged,
    Checkout,
}

struct Session {
    id: String,
    user: u32,
    segment: Segment,
    device: &'static str,
    country: &'static str,
    /// (product, quantity) lines.
    cart: Vec<(usize, u32)>,
    cart_cents: u64,
    /// The product last added (for checkout and purchase records).
    last_added: Option<usize>,
    last: Option<Last>,
    events: u32,
}

enum Step {
    View,
    Add(usize),
    Remove,
    Checkout,
    Purchase,
}

/// Interleaved shopping sessions, deterministic from a seed.
pub struct EcommerceGenerator {
    config: EcommerceConfig,
    seed: u64,
    rng: StdRng,
    products: Vec<Product>,
    open: Vec<Session>,
    next_session: u64,
    seq: u64,
    truth: EcommerceTruth,
}

impl std::fmt::Debug for EcommerceGenerator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EcommerceGenerator")
            .field("config", &self.config)
            .field("open_sessions", &self.open.len())
            .field("records", &self.seq)
            .finish_non_exhaustive()
    }
}

impl EcommerceGenerator {
    /// A generator for `config`, deterministic from `seed`.
    pub fn new(mut config: EcommerceConfig, seed: u64) -> Self {
        config.concurrent_sessions = config.concurrent_sessions.max(1);
        config.users = config.users.max(1);
        let mut rng = StdRng::seed_from_u64(splitmix64(seed ^ 0x5e55_1075));
        let products = (0..PRODUCTS)
            .map(|i| {
                let category = i % CATEGORIES.len();
                let dollars = lognormal(&mut rng, CATEGORIES[category].median, 0.6);
                // Prices end in .99 or .49, at least 0.99.
                let whole = dollars.floor().clamp(0.0, 5_000.0) as u64;
                let cents = whole * 100 + if rng.random_bool(0.7) { 99 } else { 49 };
                Product { category, cents }
            })
            .collect();
        Self {
            truth: EcommerceTruth {
                topic: TOPIC.to_owned(),
                ..EcommerceTruth::default()
            },
            config,
            seed,
            rng,
            products,
            open: Vec::new(),
            next_session: 0,
            seq: 0,
        }
    }

    /// What was produced so far, per session.
    pub fn truth(&self) -> &EcommerceTruth {
        &self.truth
    }

    /// Takes the ground truth out (for the report at the end of a run).
    pub fn into_truth(self) -> EcommerceTruth {
        self.truth
    }

    /// Records produced.
    pub fn records(&self) -> u64 {
        self.seq
    }

    /// Writes a JSON array of `n` record envelopes `{"key": session_id, "value": {…}}`
    /// stamped `now_ms` into `out` (cleared first): the body of
    /// `POST /api/v1/topics/{topic}/records`.
    pub fn write_batch(
        &mut self,
        now_ms: i64,
        n: usize,
        out: &mut Vec<u8>,
    ) -> serde_json::Result<()> {
        #[derive(Serialize)]
        struct Envelope<'a> {
            key: &'a str,
            value: &'a EcommerceEvent,
        }
        out.clear();
        out.push(b'[');
        for i in 0..n {
            if i > 0 {
                out.push(b',');
            }
            let event = self.next_event(now_ms);
            serde_json::to_writer(
                &mut *out,
                &Envelope {
                    key: &event.session_id,
                    value: &event,
                },
            )?;
        }
        out.push(b']');
        Ok(())
    }

    /// The next record, stamped `now_ms`.
    pub fn next_event(&mut self, now_ms: i64) -> EcommerceEvent {
        while self.open.len() < self.config.concurrent_sessions {
            let s = self.open_session();
            self.open.push(s);
        }
        // A fresh session always starts with a view, so this ends by the second round.
        loop {
            let ix = self.rng.random_range(0..self.open.len());
            let Some(step) = self.decide(ix) else {
                // The user leaves; someone else arrives.
                let fresh = self.open_session();
                self.open[ix] = fresh;
                continue;
            };
            let event = self.apply(ix, step, now_ms);
            if event.event_type == "purchase" {
                let fresh = self.open_session();
                self.open[ix] = fresh;
            }
            return event;
        }
    }

    fn open_session(&mut self) -> Session {
        let n = self.next_session;
        self.next_session += 1;
        let user = self.rng.random_range(0..self.config.users);
        // A user's segment is a property of the user, not of the session.
        let segment = match splitmix64(self.seed ^ u64::from(user).wrapping_mul(0x9E37)) % 100 {
            0..=54 => Segment::New,
            55..=89 => Segment::Returning,
            _ => Segment::Vip,
        };
        Session {
            id: format!("{}-s{n}", self.config.run_id),
            user,
            segment,
            device: weighted(&mut self.rng, &DEVICES),
            country: weighted(&mut self.rng, &COUNTRIES),
            cart: Vec::new(),
            cart_cents: 0,
            last_added: None,
            last: None,
            events: 0,
        }
    }

    /// The session's next step; `None`: the user leaves.
    fn decide(&mut self, ix: usize) -> Option<Step> {
        let s = &self.open[ix];
        if s.events >= MAX_SESSION_EVENTS {
            return None;
        }
        let seg = s.segment;
        let has_cart = !s.cart.is_empty();
        let r: f64 = self.rng.random();
        match s.last {
            None => Some(Step::View),
            Some(Last::Viewed(p)) => {
                if r < seg.p_add() {
                    Some(Step::Add(p))
                } else if r < seg.p_add() + 0.6 {
                    Some(Step::View)
                } else if has_cart && r < seg.p_add() + 0.7 {
                    Some(Step::Checkout)
                } else {
                    None
                }
            }
            Some(Last::CartChanged) if !has_cart => {
                if r < 0.5 {
                    Some(Step::View)
                } else {
                    None
                }
            }
            Some(Last::CartChanged) => {
                let p = seg.p_checkout();
                if r < p {
                    Some(Step::Checkout)
                } else if r < p + 0.08 {
                    Some(Step::Remove)
                } else if r < p + 0.5 {
                    Some(Step::View)
                } else {
                    None
                }
            }
            Some(Last::Checkout) => {
                let p = seg.p_purchase();
                if r < p {
                    Some(Step::Purchase)
                } else if r < p + 0.08 {
                    Some(Step::View)
                } else {
                    None
                }
            }
        }
    }

    fn apply(&mut self, ix: usize, step: Step, now_ms: i64) -> EcommerceEvent {
        let rng = &mut self.rng;
        let s = &mut self.open[ix];
        let (event_type, product, quantity) = match step {
            Step::View => {
                // Views cluster in a category: half the time stay in the last one.
                let p = match s.last {
                    Some(Last::Viewed(prev)) if rng.random_bool(0.5) => {
                        let cat = self.products[prev].category;
                        cat + CATEGORIES.len() * rng.random_range(0..PRODUCTS / CATEGORIES.len())
                    }
                    _ => rng.random_range(0..PRODUCTS),
                };
                s.last = Some(Last::Viewed(p));
                ("product_viewed", p, 1)
            }
            Step::Add(p) => {
                let q = if rng.random_bool(0.8) {
                    1
                } else {
                    rng.random_range(2..=3)
                };
                s.cart.push((p, q));
                s.cart_cents += self.products[p].cents * u64::from(q);
                s.last_added = Some(p);
                s.last = Some(Last::CartChanged);
                ("added_to_cart", p, q)
            }
            Step::Remove => {
                let line = rng.random_range(0..s.cart.len());
                let (p, q) = s.cart.swap_remove(line);
                s.cart_cents = s
                    .cart_cents
                    .saturating_sub(self.products[p].cents * u64::from(q));
                if s.last_added == Some(p) {
                    s.last_added = s.cart.last().map(|(p, _)| *p);
                }
                s.last = Some(Last::CartChanged);
                ("removed_from_cart", p, q)
            }
            Step::Checkout | Step::Purchase => {
                let p = s
                    .last_added
                    .or_else(|| s.cart.last().map(|(p, _)| *p))
                    .unwrap_or(0);
                let units = s.cart.iter().map(|(_, q)| *q).sum();
                let kind = if matches!(step, Step::Checkout) {
                    s.last = Some(Last::Checkout);
                    "checkout_started"
                } else {
                    "purchase"
                };
                (kind, p, units)
            }
        };
        s.events += 1;
        let product_ix = product;
        let product = &self.products[product_ix];
        let seq = self.seq;
        self.seq += 1;
        let event = EcommerceEvent {
            event_id: format!("{}-{seq}", self.config.run_id),
            session_id: s.id.clone(),
            user_id: format!("u{:05}", s.user),
            event_type: event_type.to_owned(),
            product_id: format!("p{product_ix:04}"),
            category: CATEGORIES[product.category].name.to_owned(),
            price: cents_to_dollars(product.cents),
            quantity,
            cart_total: cents_to_dollars(s.cart_cents),
            user_segment: s.segment.as_str().to_owned(),
            device: s.device.to_owned(),
            country: s.country.to_owned(),
            timestamp: now_ms,
        };
        self.record(&event);
        event
    }

    fn record(&mut self, e: &EcommerceEvent) {
        let t = &mut self.truth;
        t.records += 1;
        *t.event_counts.entry(e.event_type.clone()).or_default() += 1;
        let s = t.sessions.entry(e.session_id.clone()).or_default();
        if s.events_count == 0 {
            s.cart_value = e.cart_total;
        }
        s.user_id.clone_from(&e.user_id);
        s.user_segment.clone_from(&e.user_segment);
        s.events_count += 1;
        s.cart_value = s.cart_value.max(e.cart_total);
        s.purchase_count += u64::from(e.event_type == "purchase");
        s.last_event_type.clone_from(&e.event_type);
    }
}

fn cents_to_dollars(cents: u64) -> f64 {
    cents as f64 / 100.0
}

fn weighted(rng: &mut StdRng, items: &[(&'static str, u32)]) -> &'static str {
    let total: u32 = items.iter().map(|(_, w)| w).sum();
    let mut x = rng.random_range(0..total);
    for (name, w) in items {
        if x < *w {
            return name;
        }
        x -= w;
    }
    items[items.len() - 1].0
}
