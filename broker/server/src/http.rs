//! The broker's HTTP endpoint for orchestration: `/healthz` (the process answers), `/readyz`
//! (registered with the controller and serving Kafka), `/metrics` (Prometheus).
//! The HTTP itself is krait-probe's.

use std::sync::Arc;

use krait_probe::Answer;
use tokio::net::TcpListener;

use crate::broker::Broker;

/// Serves until the task is aborted.
pub async fn serve(listener: TcpListener, broker: Arc<Broker>) {
    krait_probe::serve(listener, move |path| route(path, &broker)).await
}

fn route(path: &str, broker: &Broker) -> Answer {
    match path {
        // Red once the broker must stop (its metadata quorum failed, say): it is going down.
        "/healthz" => match broker.cluster.failure() {
            None => Answer::ok("ok\n"),
            Some(why) => Answer::unavailable(format!("{why}\n")),
        },
        // Ready once this broker process is a registered, unfenced member and has applied the
        // image that says so: from then on it serves Kafka requests. The image a restarted
        // broker restores from its volume names its previous incarnation and does not count.
        "/readyz" if broker.cluster.serving_in(&broker.cluster.image()) => Answer::ok("ready\n"),
        "/readyz" => Answer::unavailable("not a registered cluster member yet\n"),
        "/metrics" => Answer::metrics(broker.metrics.render(broker)),
        _ => Answer::not_found(),
    }
}
