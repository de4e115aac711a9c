//! The view's HTTP side: the page and its assets, `GET /api/sagas` (the list, searched),
//! `GET /api/sagas/{transaction_id}` (one saga) and `GET /api/stream` (changes, live).

use std::convert::Infallible;

use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use futures_util::StreamExt;
use futures_util::stream::{self, Stream};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;

use super::{STUCK_AFTER, Summary, View, lock};
use crate::http::ApiError;

const INDEX: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/app.js");
const TABS_SCRIPT: &str = include_str!("assets/tabs.js");
const STYLE: &str = include_str!("assets/style.css");

/// Most sagas one list answer holds; a search narrows the rest down.
const MAX_LIST: usize = 500;

/// The view's routes.
pub fn router(view: View) -> Router {
    Router::new()
        .route("/", get(|| async { Html(INDEX) }))
        .route(
            "/app.js",
            get(|| async { asset("text/javascript", SCRIPT) }),
        )
        .route(
            "/tabs.js",
            get(|| async { asset("text/javascript", TABS_SCRIPT) }),
        )
        .route("/style.css", get(|| async { asset("text/css", STYLE) }))
        .route("/api/sagas", get(list))
        .route("/api/sagas/{transaction_id}", get(detail))
        .route("/api/stream", get(stream))
        .route("/api/topics", get(topics))
        .route("/api/topics/{topic}", get(topic_tail))
        .route(
            "/api/topics/{topic}/{partition}/{offset}",
            get(message_body),
        )
        .route("/api/about", get(about))
        .route("/api/stock", get(stock))
        .route("/api/consumers", get(consumers))
        .route("/api/styles", get(styles))
        .route("/api/styles/orders", axum::routing::post(place_in_each))
        .route("/api/drills", get(drills))
        .route("/api/drills/{style}/{name}", axum::routing::post(run_drill))
        .with_state(view)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    #[serde(default)]
    q: String,
    limit: Option<usize>,
}

#[derive(Debug, Serialize)]
struct ListAnswer {
    sagas: Vec<Summary>,
    /// How many sagas matched (the list holds at most `limit` of them).
    matched: usize,
    /// How many sagas there are.
    total: usize,
    stuck_after_ms: u128,
    now_ms: i64,
}

async fn list(State(view): State<View>, Query(query): Query<ListQuery>) -> Json<ListAnswer> {
    let now = crate::kafka::now_ms();
    let limit = query.limit.unwrap_or(MAX_LIST).min(MAX_LIST);
    let (mut sagas, mut matched, mut total) = (Vec::new(), 0, 0);
    for book in &view.books {
        let book = lock(book);
        let (found, count) = book.list(query.q.trim(), limit, now);
        sagas.extend(found);
        matched += count;
        total += book.len();
    }
    // The books' lists merged in the order each is in.
    sagas.sort_by(Summary::list_order);
    sagas.truncate(limit);
    Json(ListAnswer {
        sagas,
        matched,
        total,
        stuck_after_ms: STUCK_AFTER.as_millis(),
        now_ms: now,
    })
}

/// One saga: its messages, and what the order store holds of it (`stored`: `null` when
/// the view has no order store for its topics).
#[derive(Debug, Serialize)]
struct DetailAnswer {
    #[serde(flatten)]
    detail: super::book::Detail,
    stored: Option<super::states::Stored>,
}

async fn detail(
    State(view): State<View>,
    Path(transaction_id): Path<String>,
) -> Result<Json<DetailAnswer>, ApiError> {
    let now = crate::kafka::now_ms();
    let (index, detail) = view
        .books
        .iter()
        .enumerate()
        .find_map(|(index, book)| Some((index, lock(book).detail(&transaction_id, now)?)))
        .ok_or_else(|| ApiError::not_found(format!("no saga {transaction_id} on the topics")))?;
    let stored = match &view.sources[index].orders {
        Some(orders) => {
            let user = detail.summary.user_id.as_deref();
            Some(super::states::read(orders, &transaction_id, user).await)
        }
        None => None,
    };
    Ok(Json(DetailAnswer { detail, stored }))
}

/// The changed sagas as they come, one `sagas` event per tick; a page that fell behind
/// gets `reload` (it asks for the whole list again).
async fn stream(State(view): State<View>) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let updates = view.updates.subscribe();
    let events = stream::unfold(updates, |mut updates| async move {
        let event = match updates.recv().await {
            Ok(json) => Event::default().event("sagas").data(json.as_ref()),
            Err(RecvError::Lagged(_)) => Event::default().event("reload").data("{}"),
            Err(RecvError::Closed) => return None,
        };
        Some((Ok(event), updates))
    });
    let stop = view.shutdown.clone().cancelled_owned();
    Sse::new(events.take_until(stop)).keep_alive(KeepAlive::default())
}

/// The drills the page may offer (none for `edm ui`).
async fn drills(State(view): State<View>) -> Json<Vec<super::DrillOffer>> {
    Json(view.labs.map(|labs| labs.offered()).unwrap_or_default())
}

/// Runs one drill; its report.
async fn run_drill(
    State(view): State<View>,
    Path((style, name)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let labs = view
        .labs
        .ok_or_else(|| ApiError::not_found("drills run only in `edm lab --ui`"))?;
    let known = labs
        .offered()
        .iter()
        .any(|d| d.style == style && d.name == name);
    if !known {
        return Err(ApiError::not_found(format!("no drill {name} for {style}")));
    }
    labs.run(style, name)
        .await
        .map(Json)
        .map_err(|error| ApiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, error))
}

/// The topics the view reads, with how many messages it has seen on each.
async fn topics(State(view): State<View>) -> Json<Vec<super::tail::TopicSeen>> {
    Json(
        view.books
            .iter()
            .flat_map(|book| lock(book).tail.topics())
            .collect(),
    )
}

/// The newest messages of one topic, newest first (bodies on demand).
async fn topic_tail(
    State(view): State<View>,
    Path(topic): Path<String>,
) -> Result<Json<Vec<super::tail::Line>>, ApiError> {
    view.books
        .iter()
        .find_map(|book| lock(book).tail.newest(&topic))
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no messages of topic {topic} seen")))
}

/// One message's body, while the tail still keeps it.
async fn message_body(
    State(view): State<View>,
    Path((topic, partition, offset)): Path<(String, i32, i64)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    view.books
        .iter()
        .find_map(|book| lock(book).tail.body(&topic, partition, offset))
        .map(|body| Json(serde_json::json!({ "body": body })))
        .ok_or_else(|| {
            ApiError::not_found(format!("{topic} {partition}@{offset} is no longer kept"))
        })
}

/// What this view can show beyond the topics: which tabs and forms the page offers.
#[derive(Debug, Serialize)]
struct About {
    /// An inventory is read (the Stock tab).
    stock: bool,
    /// Orders may be placed in each style: labs of two styles run.
    can_place: bool,
}

async fn about(State(view): State<View>) -> Json<About> {
    Json(About {
        stock: view.sources.iter().any(|s| s.stock.is_some()),
        can_place: can_place(&view),
    })
}

/// Whether the page may place one order in each style: `edm lab --saga both --ui`.
fn can_place(view: &View) -> bool {
    view.labs.is_some() && view.sources.len() > 1
}

/// Newest stock changes shown per inventory.
const STOCK_CHANGES: u32 = 500;

/// Each inventory's items and its newest changes, each naming the saga that made it (404
/// when the view reads no inventory).
async fn stock(State(view): State<View>) -> Result<Json<serde_json::Value>, ApiError> {
    let mut answer = Vec::new();
    for source in &view.sources {
        let Some(stock) = &source.stock else { continue };
        let failed = |e: crate::store::inventory::InventoryError| {
            ApiError::unavailable(format!("the {} inventory cannot be read: {e}", source.name))
        };
        let items = stock.items().await.map_err(failed)?;
        let history = stock.newest_history(STOCK_CHANGES).await.map_err(failed)?;
        answer.push(serde_json::json!({
            "name": source.name,
            "items": items,
            "history": history,
        }));
    }
    if answer.is_empty() {
        return Err(ApiError::not_found(
            "no inventory to show: `edm ui` reads it with the services' --mysql-url",
        ));
    }
    Ok(Json(serde_json::Value::Array(answer)))
}

/// Each saga step's consumer group and its lag per partition (a group that cannot be
/// read says why in its `error`).
async fn consumers(State(view): State<View>) -> Json<Vec<super::consumers::GroupLag>> {
    Json(view.consumers.clone().lags(view.books.clone()).await)
}

#[derive(Debug, Serialize)]
struct StylesAnswer {
    figures: Vec<super::styles::Figures>,
    /// The same orders in each style (`edm lab --ui` only).
    pairs: Vec<super::styles::PairShown>,
    /// Whether the page may place an order in each style.
    can_place: bool,
}

/// Both styles side by side: their figures, and the same orders in each.
async fn styles(State(view): State<View>) -> Json<StylesAnswer> {
    let now = crate::kafka::now_ms();
    let summaries: Vec<Summary> = view
        .books
        .iter()
        .flat_map(|book| lock(book).summaries(now).collect::<Vec<_>>())
        .collect();
    let figures = super::styles::figures(&summaries);
    let pairs = view.labs.as_ref().map(|l| l.pairs()).unwrap_or_default();
    let pairs = pairs
        .into_iter()
        .map(|pair| super::styles::PairShown {
            story: pair.story,
            sagas: pair
                .transactions
                .into_iter()
                .map(|(style, tx)| {
                    let summary = view.books.iter().find_map(|b| lock(b).summary(&tx, now));
                    (style, tx, summary)
                })
                .collect(),
        })
        .collect();
    Json(StylesAnswer {
        figures,
        pairs,
        can_place: can_place(&view),
    })
}

/// What the page's order form sends.
#[derive(Debug, Deserialize)]
struct OrderForm {
    user_id: String,
    item: i64,
    quantity: i64,
}

/// Places one order in each lab's style (`edm lab --ui` only); the order service judges
/// the form as it judges any order.
async fn place_in_each(
    State(view): State<View>,
    form: Result<Json<OrderForm>, axum::extract::rejection::JsonRejection>,
) -> Result<Json<super::styles::Pair>, ApiError> {
    let Json(form) = form.map_err(|rejection| {
        ApiError::bad_request(format!(
            "an order is {{\"user_id\": text, \"item\": number, \"quantity\": number}}: {}",
            rejection.body_text()
        ))
    })?;
    if !can_place(&view) {
        return Err(ApiError::not_found(
            "orders are placed in each style only in `edm lab --saga both --ui`",
        ));
    }
    let Some(labs) = view.labs else {
        return Err(ApiError::not_found("no lab runs"));
    };
    let order = crate::tools::order_client::NewOrder {
        name: format!("{} (edm lab --ui)", form.user_id),
        addr: "29, Hansil-ro, Jung-gu, Seoul".into(),
        tel: "01012341234".into(),
        email: "lab@example.com".into(),
        user_id: form.user_id,
        item: form.item,
        quantity: form.quantity,
    };
    labs.place_in_each(order)
        .await
        .map(Json)
        .map_err(ApiError::bad_request)
}
