//! `edm order place` / `edm order get`: the walkthrough's curl steps, with readable output.

use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use crate::event::Status;

/// Errors talking to the order service.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The service did not answer.
    #[error("cannot reach the order service at {url}: {detail}. Is `edm order-service` running?")]
    Unreachable {
        /// The URL called.
        url: String,
        /// What the HTTP client said.
        detail: String,
    },
    /// The service answered with an error.
    #[error("the order service answered {status}: {message}")]
    Refused {
        /// HTTP status.
        status: u16,
        /// Its `error` field (or body).
        message: String,
    },
    /// The order did not finish in time.
    #[error("order {0} is still not final after {1:?}")]
    NotFinal(String, Duration),
}

/// Who orders what, as the walkthrough's request body.
#[derive(Debug, Clone)]
pub struct NewOrder {
    /// Customer id.
    pub user_id: String,
    /// Customer name.
    pub name: String,
    /// Address.
    pub addr: String,
    /// Phone.
    pub tel: String,
    /// E-mail.
    pub email: String,
    /// Item id.
    pub item: i64,
    /// Units.
    pub quantity: i64,
}

impl NewOrder {
    /// The JSON body of `POST /v1/order`.
    pub fn body(&self) -> Value {
        json!({
            "order": {"user_id": self.user_id, "name": self.name, "addr": self.addr,
                      "tel": self.tel, "email": self.email},
            "inventory": {"id": self.item, "quantity": self.quantity}
        })
    }
}

/// An order the service took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    /// Its saga id.
    pub transaction_id: String,
    /// Set when the answer was 202: stored, the event goes out from the outbox later.
    pub pending: Option<String>,
}

/// A client of the order service.
#[derive(Debug, Clone)]
pub struct OrderClient {
    base: String,
    http: reqwest::Client,
}

impl OrderClient {
    /// A client for the service at `base` (e.g. `http://127.0.0.1:8080`).
    pub fn new(base: &str) -> Self {
        Self {
            base: base.trim_end_matches('/').to_string(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap_or_default(),
        }
    }

    async fn answer(
        &self,
        request: reqwest::RequestBuilder,
        url: &str,
    ) -> Result<Value, ClientError> {
        let response = request.send().await.map_err(|e| ClientError::Unreachable {
            url: url.to_string(),
            detail: e.to_string(),
        })?;
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if (200..300).contains(&status) {
            Ok(body)
        } else {
            let message = body["error"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| body.to_string());
            Err(ClientError::Refused { status, message })
        }
    }

    /// Places an order; returns the service's answer (`status`, `transaction_id`, `user_id`).
    pub async fn place_raw(&self, body: &Value) -> Result<Value, ClientError> {
        let url = format!("{}/v1/order", self.base);
        self.answer(self.http.post(&url).json(body), &url).await
    }

    /// Places an order; returns its transaction id, and why its event is still pending
    /// when the service answered 202 (stored, Kafka slow to acknowledge).
    pub async fn place(&self, order: &NewOrder) -> Result<Placed, ClientError> {
        let answer = self.place_raw(&order.body()).await?;
        let transaction_id = answer["transaction_id"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| ClientError::Refused {
                status: 200,
                message: format!("no transaction_id in {answer}"),
            })?;
        let pending = answer["event"].is_string().then(|| {
            answer["detail"]
                .as_str()
                .unwrap_or("its event is not acknowledged yet")
                .to_string()
        });
        Ok(Placed {
            transaction_id,
            pending,
        })
    }

    /// The stored order.
    pub async fn get(
        &self,
        transaction_id: &str,
        user_id: &str,
    ) -> Result<Map<String, Value>, ClientError> {
        let url = format!("{}/v1/order", self.base);
        let request = self
            .http
            .get(&url)
            .query(&[("transaction_id", transaction_id), ("user_id", user_id)]);
        match self.answer(request, &url).await? {
            Value::Object(order) => Ok(order),
            other => Err(ClientError::Refused {
                status: 200,
                message: format!("not an order: {other}"),
            }),
        }
    }

    /// Polls the order until its status is final (ORDER_COMPLETE or ORDER_CANCEL).
    pub async fn wait_final(
        &self,
        transaction_id: &str,
        user_id: &str,
        timeout: Duration,
    ) -> Result<Map<String, Value>, ClientError> {
        let deadline = Instant::now() + timeout;
        loop {
            let order = self.get(transaction_id, user_id).await?;
            if order
                .get("status")
                .and_then(Value::as_str)
                .is_some_and(Status::is_final)
            {
                return Ok(order);
            }
            if Instant::now() >= deadline {
                return Err(ClientError::NotFinal(transaction_id.to_string(), timeout));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// An order as aligned `attribute: value` lines, status first.
pub fn render_order(order: &Map<String, Value>) -> String {
    let mut keys: Vec<&String> = order.keys().collect();
    keys.sort_by_key(|key| {
        (
            key.as_str() != "status",
            key.as_str() != "reason",
            key.as_str(),
        )
    });
    let width = keys.iter().map(|k| k.len()).max().unwrap_or(0);
    keys.iter()
        .map(|key| {
            let value = match &order[key.as_str()] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            format!("{key:>width$}  {value}\n")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_render_status_first() {
        let order: Map<String, Value> = serde_json::from_value(json!({
            "user_id": "user", "status": "ORDER_CANCEL", "reason": "OUT_OF_STOCK", "name": "Hong"
        }))
        .unwrap();
        let text = render_order(&order);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], " status  ORDER_CANCEL");
        assert_eq!(lines[1], " reason  OUT_OF_STOCK");
        assert_eq!(lines.len(), 4);
    }
}
