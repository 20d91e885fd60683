//! One simulated request at a time: the spans and logs each service produces, with their timing
//! and failure modes. Pure: a request is a function of (seed, request index, arrival time).

use std::borrow::Cow;

use crate::SimConfig;
use crate::record::{Attr, Level, Log, Record, Service, Span, SpanEvent, SpanKind, float, int, s};
use crate::rng::Rng;

/// Decline codes and their weights among ordinary declines.
const DECLINE_CODES: [(&str, u32); 6] = [
    ("insufficient_funds", 35),
    ("card_declined", 25),
    ("do_not_honor", 15),
    ("expired_card", 10),
    ("incorrect_cvc", 10),
    ("fraudulent", 5),
];

/// Card BINs (first six digits) with skewed weights: a few issuers dominate.
const BINS: [(&str, u32); 16] = [
    ("424242", 300),
    ("411111", 180),
    ("555555", 120),
    ("400022", 90),
    ("378282", 60),
    ("510510", 45),
    ("601111", 30),
    ("222300", 25),
    ("545454", 20),
    ("353011", 15),
    ("400051", 12),
    ("520082", 10),
    ("371449", 8),
    ("305693", 5),
    ("486070", 4),
    ("431940", 3),
];

/// The issuer that is "having issues": its cards are declined far more often, mostly
/// `do_not_honor` (the seed's "all from same BIN range" story).
pub(crate) const TROUBLED_BIN: &str = "400022";

/// Number of distinct SKUs.
const SKUS: u64 = 5_000;

/// Stripe's client timeout.
const STRIPE_TIMEOUT_MS: i64 = 5_000;

const STACKTRACE: &str = "java.net.SocketTimeoutException: Connection timeout after 5000ms
\tat java.base/sun.nio.ch.NioSocketImpl.timedRead(NioSocketImpl.java:278)
\tat java.base/java.net.Socket$SocketInputStream.read(Socket.java:1099)
\tat com.stripe.net.HttpURLConnectionClient.request(HttpURLConnectionClient.java:91)
\tat com.stripe.net.LiveStripeResponseGetter.request(LiveStripeResponseGetter.java:64)
\tat com.shop.payment.StripeGateway.charge(StripeGateway.java:142)
\tat com.shop.payment.ChargeService.process(ChargeService.java:58)
\tat com.shop.payment.PaymentController.create(PaymentController.java:37)";

/// The user id of popularity rank `rank` (1 = the busiest user). A bijection onto
/// `usr_10000 ..`, so ids look scattered while ranks stay queryable.
pub(crate) fn user_id(rank: u64, users: u64) -> String {
    format!("usr_{}", 10_000 + (rank * 7_919) % users.max(1))
}

/// The order id of request `index`.
pub(crate) fn order_id(seed: u64, index: u64) -> String {
    let mut rng = Rng::derive(seed, 2, index);
    format!("ord_{:012x}", rng.next_u64() >> 16)
}

/// Appends the records of request `index`, arriving at `t0`, to `out` (in no particular order).
pub(crate) fn request(cfg: &SimConfig, index: u64, t0: i64, out: &mut Vec<Record>) {
    let mut traffic = Traffic {
        cfg,
        rng: Rng::derive(cfg.seed, 1, index),
        index,
        out,
    };
    if traffic.rng.chance(cfg.browse_ratio) {
        traffic.browse(t0);
    } else {
        traffic.checkout(t0);
    }
}

/// A gateway health-check log line, which belongs to no trace.
pub(crate) fn health_check(t: i64) -> Record {
    Record::Log(Log {
        service: Service::Gateway,
        time_ns: t - t.rem_euclid(Service::Gateway.log_time_unit_ns()),
        level: Level::Info,
        message: Cow::Borrowed("GET /healthz 200"),
        trace_id: None,
        span_id: None,
        attrs: vec![
            s("http.request.method", "GET"),
            s("url.path", "/healthz"),
            int("http.response.status_code", 200),
            s("user_agent.original", "kube-probe/1.31"),
        ],
    })
}

/// Whether Stripe is in an incident at `t`: minutes 10..20 of every half hour since `start_ns`.
pub(crate) fn stripe_incident(cfg: &SimConfig, t: i64) -> bool {
    let minute = (t - cfg.start_ns).div_euclid(60_000_000_000).rem_euclid(30);
    (10..20).contains(&minute)
}

struct Traffic<'a> {
    cfg: &'a SimConfig,
    rng: Rng,
    index: u64,
    out: &'a mut Vec<Record>,
}

#[derive(Clone, Copy)]
struct Ctx {
    trace_id: u128,
    span_id: u64,
}

enum Outcome {
    Paid,
    Declined(&'static str),
    Timeout,
}

struct Payment {
    /// payment-service fails to extract the caller's context and starts a new trace.
    context_lost: bool,
    order_id: String,
    user_id: String,
    amount_cents: i64,
    bin: &'static str,
    outcome: Outcome,
}

impl Traffic<'_> {
    /// A new span of `trace_id` (the next 64-bit id from the seeded generator).
    fn span_in(&mut self, trace_id: u128) -> Ctx {
        Ctx {
            trace_id,
            span_id: self.rng.id64(),
        }
    }

    fn checkout(&mut self, t0: i64) {
        let cfg = self.cfg;
        let trace_id = self.rng.id128();
        let user = self.user();
        let order_id = order_id(cfg.seed, self.index);
        let items = self.rng.range(1, 5) as i64;
        let n_plus_one = self.rng.chance(cfg.n_plus_one_rate);
        let slow_query =
            cfg.slow_query_one_in > 0 && self.rng.below(cfg.slow_query_one_in as u64) == 0;
        let bin = BINS[self.rng.weighted(&BINS.map(|b| b.1))].0;
        let amount_cents =
            (self.rng.latency(45.0, 0.8) / 1_000_000).max(1) * 100 + self.rng.below(100) as i64;
        let timeout_rate = if stripe_incident(cfg, t0) {
            cfg.stripe_incident_timeout_rate
        } else {
            cfg.stripe_timeout_rate
        };
        let outcome = if self.rng.chance(timeout_rate) {
            Outcome::Timeout
        } else {
            let troubled = bin == TROUBLED_BIN;
            let rate = if troubled {
                cfg.troubled_bin_decline_rate
            } else {
                cfg.decline_rate
            };
            if self.rng.chance(rate) {
                let code = if troubled && self.rng.chance(0.8) {
                    "do_not_honor"
                } else {
                    DECLINE_CODES[self.rng.weighted(&DECLINE_CODES.map(|c| c.1))].0
                };
                Outcome::Declined(code)
            } else {
                Outcome::Paid
            }
        };
        let status_code = match outcome {
            Outcome::Paid => 201,
            Outcome::Declined(_) => 402,
            Outcome::Timeout => 502,
        };
        let failed = status_code >= 500;
        let payment_context_lost =
            matches!(outcome, Outcome::Paid) && self.rng.chance(cfg.payment_context_drop_rate);

        // api-gateway
        let gw = self.span_in(trace_id);
        let gw_client = self.span_in(trace_id);
        let gw_client_start = t0 + self.rng.latency(1.2, 0.4);

        // order-service
        let order_srv = self.span_in(trace_id);
        let process = self.span_in(trace_id);
        let order_start = gw_client_start + self.net();
        let process_start = order_start + self.rng.latency(0.3, 0.3);
        let mut t = process_start + self.rng.latency(0.2, 0.3);
        self.log(
            Service::Orders,
            t,
            Level::Info,
            "order received",
            Some(order_srv),
            vec![
                s("order.id", order_id.clone()),
                s("user.id", user.clone()),
                int("order.item_count", items),
            ],
        );
        t += self.rng.latency(0.8, 0.5); // cart validation

        // order → inventory
        let inv_client = self.span_in(trace_id);
        let inv_client_start = t;
        let inv_start = inv_client_start + self.net();
        let inv_end = self.inventory_reserve(
            inv_client, inv_start, &order_id, items, n_plus_one, slow_query,
        );
        let inv_client_end = inv_end + self.net();
        self.span(
            Service::Orders,
            inv_client,
            Some(process.span_id),
            false,
            "POST /api/inventory/reserve",
            SpanKind::Client,
            inv_client_start,
            inv_client_end,
            None,
            vec![
                s("http.request.method", "POST"),
                s("server.address", "inventory-service"),
                int("server.port", 8080),
                s(
                    "url.full",
                    "http://inventory-service:8080/api/inventory/reserve",
                ),
                int("http.response.status_code", 200),
            ],
            vec![],
        );
        t = inv_client_end + self.rng.latency(0.2, 0.3);
        self.log(
            Service::Orders,
            t,
            Level::Info,
            "inventory reserved",
            Some(process),
            vec![s("order.id", order_id.clone())],
        );
        t += self.rng.latency(0.3, 0.3);

        // order → payment
        let pay_client = self.span_in(trace_id);
        let pay_client_start = t;
        let payment = Payment {
            context_lost: payment_context_lost,
            order_id: order_id.clone(),
            user_id: user.clone(),
            amount_cents,
            bin,
            outcome,
        };
        let pay_start = pay_client_start + self.net();
        let (pay_end, pay_trace) = self.payment(pay_client, pay_start, &payment);
        let pay_client_end = pay_end + self.net();
        self.span(
            Service::Orders,
            pay_client,
            Some(process.span_id),
            false,
            "POST /api/payments",
            SpanKind::Client,
            pay_client_start,
            pay_client_end,
            failed.then(|| "502 Bad Gateway".to_owned()),
            vec![
                s("http.request.method", "POST"),
                s("server.address", "payment-service"),
                int("server.port", 8080),
                s("url.full", "http://payment-service:8080/api/payments"),
                int(
                    "http.response.status_code",
                    if failed || status_code == 402 {
                        status_code
                    } else {
                        200
                    },
                ),
            ],
            vec![],
        );
        if payment.context_lost {
            self.mark(pay_client.span_id, "broken_propagation", Some(pay_trace));
        }
        t = pay_client_end + self.rng.latency(0.2, 0.3);

        // order → queue → email
        match payment.outcome {
            Outcome::Paid => {
                let producer = self.span_in(trace_id);
                let message_id = format!("msg_{:016x}", self.rng.next_u64());
                let publish_end = t + self.rng.latency(1.5, 0.4);
                self.span(
                    Service::Orders,
                    producer,
                    Some(process.span_id),
                    false,
                    "publish order_confirmations",
                    SpanKind::Producer,
                    t,
                    publish_end,
                    None,
                    vec![
                        s("messaging.system", "rabbitmq"),
                        s("messaging.destination.name", "order_confirmations"),
                        s("messaging.operation.type", "send"),
                        s("messaging.message.id", message_id.clone()),
                        s("order.id", order_id.clone()),
                    ],
                    vec![],
                );
                let delivered = publish_end + self.rng.latency(25.0, 0.8);
                if let Some(detached) =
                    self.email(producer, delivered, &order_id, &user, message_id)
                {
                    self.mark(producer.span_id, "broken_propagation", Some(detached));
                }
                t = publish_end + self.rng.latency(0.2, 0.3);
                self.log(
                    Service::Orders,
                    t,
                    Level::Info,
                    "order created",
                    Some(process),
                    vec![s("order.id", order_id.clone()), s("user.id", user.clone())],
                );
            }
            Outcome::Declined(_) => {
                self.log(
                    Service::Orders,
                    t,
                    Level::Warn,
                    "payment declined",
                    Some(process),
                    vec![s("order.id", order_id.clone()), s("user.id", user.clone())],
                );
            }
            Outcome::Timeout => {
                self.log(
                    Service::Orders,
                    t,
                    Level::Error,
                    "payment failed: payment-service returned 502",
                    Some(process),
                    vec![s("order.id", order_id.clone()), s("user.id", user.clone())],
                );
            }
        }
        let process_end = t + self.rng.latency(0.3, 0.3);
        self.span(
            Service::Orders,
            process,
            Some(order_srv.span_id),
            false,
            "process_order",
            SpanKind::Internal,
            process_start,
            process_end,
            failed.then(|| "payment service unavailable".to_owned()),
            vec![
                s("order.id", order_id.clone()),
                int("order.item_count", items),
            ],
            vec![],
        );
        let order_end = process_end + self.rng.latency(0.1, 0.3);
        self.span(
            Service::Orders,
            order_srv,
            Some(gw_client.span_id),
            true,
            "POST /api/orders",
            SpanKind::Server,
            order_start,
            order_end,
            failed.then(|| format!("HTTP {status_code}")),
            vec![
                s("http.request.method", "POST"),
                s("http.route", "/api/orders"),
                s("url.path", "/api/orders"),
                int("http.response.status_code", status_code),
                s("server.address", "order-service"),
                s("user.id", user.clone()),
                s("order.id", order_id.clone()),
            ],
            vec![],
        );

        // back at the gateway
        let gw_client_end = order_end + self.net();
        self.span(
            Service::Gateway,
            gw_client,
            Some(gw.span_id),
            false,
            "POST /api/orders",
            SpanKind::Client,
            gw_client_start,
            gw_client_end,
            failed.then(|| format!("HTTP {status_code}")),
            vec![
                s("http.request.method", "POST"),
                s("server.address", "order-service"),
                int("server.port", 8080),
                s("url.full", "http://order-service:8080/api/orders"),
                int("http.response.status_code", status_code),
            ],
            vec![],
        );
        let gw_end = gw_client_end + self.rng.latency(0.4, 0.3);
        self.gateway_server(
            gw,
            t0,
            gw_end,
            "POST",
            "/api/checkout",
            "/api/checkout",
            status_code,
            &user,
        );
    }

    fn browse(&mut self, t0: i64) {
        let trace_id = self.rng.id128();
        let user = self.user();
        let sku = format!("SKU-{:05}", self.rng.skewed_rank(SKUS));
        let found = !self.rng.chance(0.03);
        let status_code = if found { 200 } else { 404 };
        let gw = self.span_in(trace_id);
        let gw_client = self.span_in(trace_id);
        let gw_client_start = t0 + self.rng.latency(0.8, 0.4);
        let inv = self.span_in(trace_id);
        let inv_start = gw_client_start + self.net();
        let mut t = inv_start + self.rng.latency(0.4, 0.3);
        let db = self.span_in(trace_id);
        let db_end = t + self.rng.latency(1.5, 0.5);
        self.span(
            Service::Inventory,
            db,
            Some(inv.span_id),
            false,
            "select inventory.products",
            SpanKind::Client,
            t,
            db_end,
            None,
            vec![
                s("db.system", "postgresql"),
                s("db.name", "inventory"),
                s(
                    "db.statement",
                    "SELECT sku, name, price_cents, available FROM products WHERE sku = $1",
                ),
            ],
            vec![],
        );
        t = db_end + self.rng.latency(0.2, 0.3);
        let (level, message) = if found {
            (Level::Info, "product lookup")
        } else {
            (Level::Warn, "product not found")
        };
        self.log(
            Service::Inventory,
            t,
            level,
            message,
            Some(inv),
            vec![s("product.sku", sku.clone())],
        );
        let inv_end = t + self.rng.latency(0.2, 0.3);
        self.span(
            Service::Inventory,
            inv,
            Some(gw_client.span_id),
            true,
            "get /api/products/{sku}",
            SpanKind::Server,
            inv_start,
            inv_end,
            None,
            vec![
                s("http.request.method", "GET"),
                s("http.route", "/api/products/{sku}"),
                int("http.response.status_code", status_code),
                s("product.sku", sku.clone()),
            ],
            vec![],
        );
        let gw_client_end = inv_end + self.net();
        self.span(
            Service::Gateway,
            gw_client,
            Some(gw.span_id),
            false,
            "GET /api/products/{sku}",
            SpanKind::Client,
            gw_client_start,
            gw_client_end,
            None,
            vec![
                s("http.request.method", "GET"),
                s("server.address", "inventory-service"),
                int("server.port", 8080),
                s(
                    "url.full",
                    format!("http://inventory-service:8080/api/products/{sku}"),
                ),
                int("http.response.status_code", status_code),
            ],
            vec![],
        );
        let gw_end = gw_client_end + self.rng.latency(0.3, 0.3);
        let path = format!("/api/products/{sku}");
        self.gateway_server(
            gw,
            t0,
            gw_end,
            "GET",
            "/api/products/{sku}",
            &path,
            status_code,
            &user,
        );
    }

    /// The gateway's root SERVER span and its ECS access-log line.
    #[allow(clippy::too_many_arguments)] // one call per request shape; a struct would only rename them
    fn gateway_server(
        &mut self,
        gw: Ctx,
        start: i64,
        end: i64,
        method: &'static str,
        route: &'static str,
        path: &str,
        status_code: i64,
        user: &str,
    ) {
        let name = format!("{method} {route}");
        self.span(
            Service::Gateway,
            gw,
            None,
            false,
            name,
            SpanKind::Server,
            start,
            end,
            (status_code >= 500).then(|| format!("HTTP {status_code}")),
            vec![
                s("http.request.method", method),
                s("http.route", route),
                s("url.path", path.to_owned()),
                s("url.scheme", "https"),
                int("http.response.status_code", status_code),
                s("server.address", "shop.example.com"),
                s("user.id", user.to_owned()),
                s(
                    "user_agent.original",
                    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15",
                ),
            ],
            vec![],
        );
        let level = match status_code {
            500.. => Level::Error,
            400.. => Level::Warn,
            _ => Level::Info,
        };
        self.log(
            Service::Gateway,
            end,
            level,
            format!("{method} {path} {status_code}"),
            Some(gw),
            vec![
                s("http.request.method", method),
                s("url.path", path.to_owned()),
                int("http.response.status_code", status_code),
                int("event.duration", end - start),
                s("user.id", user.to_owned()),
            ],
        );
    }

    /// inventory-service's `POST /api/inventory/reserve`; returns when its SERVER span ends.
    fn inventory_reserve(
        &mut self,
        caller: Ctx,
        start: i64,
        order_id: &str,
        items: i64,
        n_plus_one: bool,
        slow_query: bool,
    ) -> i64 {
        let srv = self.span_in(caller.trace_id);
        let mut t = start + self.rng.latency(0.6, 0.3);
        self.log(
            Service::Inventory,
            t,
            Level::Info,
            "reserving stock",
            Some(srv),
            vec![s("order.id", order_id.to_owned()), int("sku_count", items)],
        );
        t += self.rng.latency(0.1, 0.3);
        if n_plus_one {
            // The ORM loads each SKU on its own: the N+1 pattern.
            let n = self.rng.range(10, 40);
            for q in 0..n {
                let end = t + self.rng.latency(1.1, 0.3);
                t = self.db_span(
                    srv,
                    t,
                    end,
                    "select inventory.stock",
                    "SELECT sku, available FROM stock WHERE sku = $1",
                );
                if q == 0 {
                    self.mark_last("n_plus_one", None);
                }
                t += self.rng.latency(0.12, 0.3);
            }
        } else {
            let end = t + self.rng.latency(2.0, 0.5);
            t = self.db_span(
                srv,
                t,
                end,
                "select inventory.stock",
                "SELECT sku, available FROM stock WHERE sku = ANY($1)",
            );
            t += self.rng.latency(0.12, 0.3);
        }
        // stock_movements has no index on warehouse_id: usually cached, one in N times a 400 ms+ scan.
        let statement = "SELECT sku, sum(delta) FROM stock_movements WHERE warehouse_id = $1 AND sku = ANY($2) GROUP BY sku";
        let duration = if slow_query {
            400_500_000 + self.rng.latency(150.0, 0.6)
        } else {
            self.rng.latency(3.0, 0.5)
        };
        let movements_start = t;
        t = self.db_span(
            srv,
            t,
            t + duration,
            "select inventory.stock_movements",
            statement,
        );
        if slow_query {
            self.mark_last("slow_span", None);
            // Whole microseconds, as the span records them.
            let duration_ms = ((t - movements_start) / 1_000) as f64 / 1_000.0;
            self.log(
                Service::Inventory,
                t + 50_000,
                Level::Warn,
                "slow query",
                Some(srv),
                vec![
                    s("db.statement", statement),
                    float("duration_ms", duration_ms),
                ],
            );
        }
        t += self.rng.latency(0.12, 0.3);
        let end = t + self.rng.latency(1.5, 0.4);
        t = self.db_span(
            srv,
            t,
            end,
            "update inventory.stock",
            "UPDATE stock SET reserved = reserved + $2 WHERE sku = $1",
        );
        t += self.rng.latency(0.2, 0.3);
        self.log(
            Service::Inventory,
            t,
            Level::Info,
            "stock reserved",
            Some(srv),
            vec![s("order.id", order_id.to_owned())],
        );
        let end = t + self.rng.latency(0.2, 0.3);
        self.span(
            Service::Inventory,
            srv,
            Some(caller.span_id),
            true,
            "post /api/inventory/reserve",
            SpanKind::Server,
            start,
            end,
            None,
            vec![
                s("http.request.method", "POST"),
                s("http.route", "/api/inventory/reserve"),
                int("http.response.status_code", 200),
                s("order.id", order_id.to_owned()),
            ],
            vec![],
        );
        self.last_end()
    }

    /// A PostgreSQL CLIENT span; returns its (rounded) end.
    fn db_span(
        &mut self,
        parent: Ctx,
        start: i64,
        end: i64,
        name: &'static str,
        statement: &'static str,
    ) -> i64 {
        let id = self.span_in(parent.trace_id);
        self.span(
            Service::Inventory,
            id,
            Some(parent.span_id),
            false,
            name,
            SpanKind::Client,
            start,
            end,
            None,
            vec![
                s("db.system", "postgresql"),
                s("db.name", "inventory"),
                s("db.statement", statement),
            ],
            vec![],
        );
        self.last_end()
    }

    /// payment-service's `POST /api/payments`; returns when its SERVER span ends and the trace
    /// it was recorded in (a new one when the context was lost).
    fn payment(&mut self, caller: Ctx, start: i64, p: &Payment) -> (i64, u128) {
        let srv = if p.context_lost {
            Ctx {
                trace_id: self.rng.id128(),
                span_id: self.rng.id64(),
            }
        } else {
            self.span_in(caller.trace_id)
        };
        let mut t = start + self.rng.latency(1.5, 0.4);
        self.log(
            Service::Payments,
            t,
            Level::Info,
            "charging card",
            Some(srv),
            vec![
                s("order.id", p.order_id.clone()),
                int("payment.amount_cents", p.amount_cents),
                s("payment.provider", "stripe"),
            ],
        );
        t += self.rng.latency(2.0, 0.5); // fraud rules
        let stripe = self.span_in(srv.trace_id);
        let stripe_start = t;
        let mut stripe_attrs = vec![
            s("http.request.method", "POST"),
            s("server.address", "api.stripe.com"),
            int("server.port", 443),
            s("url.full", "https://api.stripe.com/v1/charges"),
        ];
        let (stripe_end, stripe_error, events) = match p.outcome {
            Outcome::Timeout => {
                let end = t + STRIPE_TIMEOUT_MS * 1_000_000 + self.rng.latency(8.0, 0.6);
                stripe_attrs.push(s("error.type", "java.net.SocketTimeoutException"));
                let event = SpanEvent {
                    time_ns: end,
                    name: "exception",
                    attrs: vec![
                        s("exception.type", "java.net.SocketTimeoutException"),
                        s("exception.message", "Connection timeout after 5000ms"),
                        s("exception.stacktrace", STACKTRACE),
                    ],
                };
                (
                    end,
                    Some("Connection timeout after 5000ms".to_owned()),
                    vec![event],
                )
            }
            // A decline is a fast, well-formed 402 from Stripe: not a transport error, so the
            // Stripe client span stays UNSET; the payment SERVER span carries the failure.
            Outcome::Declined(_) => {
                stripe_attrs.push(int("http.response.status_code", 402));
                (
                    t + self.rng.latency(180.0, 0.4).min(4_000_000_000),
                    None,
                    vec![],
                )
            }
            Outcome::Paid => {
                stripe_attrs.push(int("http.response.status_code", 200));
                (
                    t + self.rng.latency(320.0, 0.45).min(4_500_000_000),
                    None,
                    vec![],
                )
            }
        };
        self.span(
            Service::Payments,
            stripe,
            Some(srv.span_id),
            false,
            "stripe_api_call",
            SpanKind::Client,
            stripe_start,
            stripe_end,
            stripe_error,
            stripe_attrs,
            events,
        );
        if matches!(p.outcome, Outcome::Timeout) {
            // Where the failure starts, and 5 s against a usual few hundred ms.
            self.mark_last("error_origin", None);
            self.mark_last("slow_span", None);
        }
        t = stripe_end + self.rng.latency(0.5, 0.3);

        let mut outcome_attrs = vec![
            s("order.id", p.order_id.clone()),
            s("user.id", p.user_id.clone()),
            int("payment.amount_cents", p.amount_cents),
            s("card.bin", p.bin),
        ];
        let mut span_attrs = vec![
            s("http.request.method", "POST"),
            s("http.route", "/api/payments"),
            s("url.path", "/api/payments"),
            s("server.address", "payment-service"),
            s("user.id", p.user_id.clone()),
            s("order.id", p.order_id.clone()),
            int("payment.amount_cents", p.amount_cents),
            s("payment.provider", "stripe"),
            s("card.bin", p.bin),
        ];
        let (status_code, error) = match p.outcome {
            Outcome::Paid => {
                outcome_attrs.push(s(
                    "stripe.charge_id",
                    format!("ch_{:016x}", self.rng.next_u64()),
                ));
                self.log(
                    Service::Payments,
                    t,
                    Level::Info,
                    "payment succeeded",
                    Some(srv),
                    outcome_attrs,
                );
                (200, None)
            }
            Outcome::Declined(code) => {
                outcome_attrs.push(s("decline_code", code));
                span_attrs.push(s("decline_code", code));
                self.log(
                    Service::Payments,
                    t,
                    Level::Warn,
                    "payment declined",
                    Some(srv),
                    outcome_attrs,
                );
                (402, Some(format!("card declined: {code}")))
            }
            Outcome::Timeout => {
                outcome_attrs.push(s("stripe_endpoint", "https://api.stripe.com/v1/charges"));
                outcome_attrs.push(int("timeout_ms", STRIPE_TIMEOUT_MS));
                outcome_attrs.push(s("error.type", "java.net.SocketTimeoutException"));
                self.log(
                    Service::Payments,
                    t,
                    Level::Error,
                    "Stripe API timeout",
                    Some(srv),
                    outcome_attrs,
                );
                (502, Some("Stripe API timeout".to_owned()))
            }
        };
        span_attrs.insert(4, int("http.response.status_code", status_code));
        let end = t + self.rng.latency(0.3, 0.3);
        let declined = matches!(p.outcome, Outcome::Declined(_));
        self.span(
            Service::Payments,
            srv,
            (!p.context_lost).then_some(caller.span_id),
            !p.context_lost,
            "POST /api/payments",
            SpanKind::Server,
            start,
            end,
            error,
            span_attrs,
            vec![],
        );
        if declined {
            self.mark_last("error_origin", None);
        }
        if p.context_lost {
            self.mark_last("detached_root", Some(caller.trace_id));
        }
        (self.last_end(), srv.trace_id)
    }

    /// email-service consuming the confirmation message. Sometimes it fails to extract the
    /// context from the message headers and starts a new trace (broken propagation): then
    /// returns that trace.
    fn email(
        &mut self,
        producer: Ctx,
        start: i64,
        order_id: &str,
        user: &str,
        message_id: String,
    ) -> Option<u128> {
        let dropped = self.rng.chance(self.cfg.context_drop_rate);
        let consumer = if dropped {
            Ctx {
                trace_id: self.rng.id128(),
                span_id: self.rng.id64(),
            }
        } else {
            self.span_in(producer.trace_id)
        };
        let parent = (!dropped).then_some(producer.span_id);
        let mut t = start + self.rng.latency(0.5, 0.3);
        self.log(
            Service::Email,
            t,
            Level::Info,
            "sending order confirmation",
            Some(consumer),
            vec![
                s("order.id", order_id.to_owned()),
                s("email.template", "order_confirmation"),
            ],
        );
        t += self.rng.latency(3.0, 0.5); // render
        let send = self.span_in(consumer.trace_id);
        let send_end = t + self.rng.latency(120.0, 0.5);
        self.span(
            Service::Email,
            send,
            Some(consumer.span_id),
            false,
            "POST /v3/mail/send",
            SpanKind::Client,
            t,
            send_end,
            None,
            vec![
                s("http.request.method", "POST"),
                s("server.address", "api.sendgrid.com"),
                int("server.port", 443),
                s("url.full", "https://api.sendgrid.com/v3/mail/send"),
                int("http.response.status_code", 202),
            ],
            vec![],
        );
        t = send_end + self.rng.latency(0.3, 0.3);
        self.log(
            Service::Email,
            t,
            Level::Info,
            "order confirmation sent",
            Some(consumer),
            vec![s("order.id", order_id.to_owned())],
        );
        let end = t + self.rng.latency(0.5, 0.3);
        self.span(
            Service::Email,
            consumer,
            parent,
            parent.is_some(),
            "process order_confirmations",
            SpanKind::Consumer,
            start,
            end,
            None,
            vec![
                s("messaging.system", "rabbitmq"),
                s("messaging.destination.name", "order_confirmations"),
                s("messaging.operation.type", "process"),
                s("messaging.message.id", message_id),
                s("order.id", order_id.to_owned()),
                s("user.id", user.to_owned()),
            ],
            vec![],
        );
        if dropped {
            self.mark_last("detached_root", Some(producer.trace_id));
        }
        dropped.then_some(consumer.trace_id)
    }

    /// Notes a problem on the span pushed last (ground truth only).
    fn mark_last(&mut self, kind: &'static str, linked: Option<u128>) {
        if let Some(Record::Span(span)) = self.out.last_mut() {
            span.problems.push((kind, linked));
        }
    }

    /// Notes a problem on an earlier span of this request (ground truth only).
    fn mark(&mut self, span_id: u64, kind: &'static str, linked: Option<u128>) {
        let span = self.out.iter_mut().rev().find_map(|r| match r {
            Record::Span(s) if s.span_id == span_id => Some(s),
            _ => None,
        });
        if let Some(span) = span {
            span.problems.push((kind, linked));
        }
    }

    fn user(&mut self) -> String {
        let users = self.cfg.users.max(1) as u64;
        user_id(self.rng.skewed_rank(users), users)
    }

    /// One network hop.
    fn net(&mut self) -> i64 {
        self.rng.latency(0.4, 0.4)
    }

    /// The end of the span pushed last (after rounding to its format's precision).
    fn last_end(&self) -> i64 {
        match self.out.last() {
            Some(Record::Span(span)) => span.end_ns,
            _ => 0,
        }
    }

    #[allow(clippy::too_many_arguments)] // mirrors the span's fields one to one
    fn span(
        &mut self,
        service: Service,
        id: Ctx,
        parent: Option<u64>,
        remote_parent: bool,
        name: impl Into<Cow<'static, str>>,
        kind: SpanKind,
        start: i64,
        end: i64,
        error: Option<String>,
        attrs: Vec<Attr>,
        events: Vec<SpanEvent>,
    ) {
        let unit = service.span_time_unit_ns();
        let start_ns = start - start.rem_euclid(unit);
        let end_ns = (end - end.rem_euclid(unit)).max(start_ns + unit);
        self.out.push(Record::Span(Span {
            service,
            trace_id: id.trace_id,
            span_id: id.span_id,
            parent_span_id: parent,
            remote_parent,
            name: name.into(),
            kind,
            start_ns,
            end_ns,
            error,
            attrs,
            events,
            problems: Vec::new(),
        }));
    }

    fn log(
        &mut self,
        service: Service,
        t: i64,
        level: Level,
        message: impl Into<Cow<'static, str>>,
        ctx: Option<Ctx>,
        attrs: Vec<Attr>,
    ) {
        let unit = service.log_time_unit_ns();
        self.out.push(Record::Log(Log {
            service,
            time_ns: t - t.rem_euclid(unit),
            level,
            message: message.into(),
            trace_id: ctx.map(|c| c.trace_id),
            span_id: ctx.map(|c| c.span_id),
            attrs,
        }));
    }
}

/// Whether request `index` is a checkout (not a product browse): the first draw of its stream.
pub(crate) fn is_checkout(cfg: &SimConfig, index: u64) -> bool {
    !Rng::derive(cfg.seed, 1, index).chance(cfg.browse_ratio)
}
