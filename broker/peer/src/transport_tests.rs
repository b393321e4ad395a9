//! Both sides of the cluster port's mutual TLS, over real loopback sockets.

use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::testing::TestCa as Ca;

/// A server on a loopback port; returns its address and the connections it accepted.
async fn serve(transport: &ClusterTransport) -> (SocketAddr, mpsc::Receiver<PeerIo>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let mut incoming = Box::pin(transport.incoming(listener));
    let (tx, rx) = mpsc::channel(8);
    tokio::spawn(async move {
        while let Some(Ok(mut io)) = incoming.next().await {
            // Echo one byte so the client sees a working connection.
            let mut byte = [0u8; 1];
            if io.read_exact(&mut byte).await.is_ok() {
                let _ = io.write_all(&byte).await;
            }
            let _ = tx.send(io).await;
        }
    });
    (address, rx)
}

fn uri(address: SocketAddr) -> http::Uri {
    format!("http://{address}").parse().unwrap()
}

/// Connects and echoes a byte; the connection on both sides, or the client's error.
async fn exchange(
    client: &ClusterTransport,
    address: SocketAddr,
    accepted: &mut mpsc::Receiver<PeerIo>,
) -> io::Result<(PeerIo, PeerIo)> {
    let mut io = client.connect(&uri(address)).await?;
    io.write_all(b"x").await?;
    let mut byte = [0u8; 1];
    io.read_exact(&mut byte).await?;
    let server_side = tokio::time::timeout(Duration::from_secs(5), accepted.recv())
        .await
        .map_err(|_| io::Error::other("the server did not accept"))?
        .ok_or_else(|| io::Error::other("server gone"))?;
    Ok((io, server_side))
}

#[tokio::test]
async fn brokers_of_one_ca_know_each_other_by_node_id() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "ca");
    let (address, mut accepted) = serve(&ca.transport(Some(1))).await;
    let (client_side, server_side) = exchange(&ca.transport(Some(2)), address, &mut accepted)
        .await
        .unwrap();
    assert_eq!(
        server_side.connect_info().node_id,
        Some(2),
        "the server knows its caller"
    );
    assert_eq!(
        client_side.node_id,
        Some(1),
        "the client knows whom it reached"
    );
}

#[tokio::test]
async fn callers_without_a_cluster_certificate_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "ca");
    let rogue = Ca::new(dir.path(), "rogue");
    let (address, mut accepted) = serve(&ca.transport(Some(1))).await;

    // Plaintext to a TLS port: no TLS, no call.
    let plain = exchange(&ClusterTransport::Plaintext, address, &mut accepted).await;
    assert!(plain.is_err(), "a plaintext caller must be refused");
    // A certificate from another CA, even one naming a node id: the server refuses it (and
    // the caller refuses the server, whose CA it does not trust).
    let other_ca = exchange(&rogue.transport(Some(1)), address, &mut accepted).await;
    assert!(
        other_ca.is_err(),
        "a certificate of another CA must be refused"
    );
    // The cluster CA's certificate without a node id: not a broker.
    let anonymous = exchange(&ca.transport(None), address, &mut accepted).await;
    assert!(
        anonymous.is_err(),
        "a certificate without a node id must be refused"
    );
    assert!(
        accepted.try_recv().is_err(),
        "the server accepted none of them"
    );

    // And a client refuses a server whose certificate names no node id.
    let (no_id_server, mut no_id_accepted) = serve(&ca.transport(None)).await;
    let refused = exchange(&ca.transport(Some(2)), no_id_server, &mut no_id_accepted).await;
    assert!(refused.is_err());
}

#[test]
fn a_caller_speaks_only_for_itself_and_anonymous_callers_are_unchecked() {
    assert!(Caller::Node(2).speaks_for(2, "a vote").is_ok());
    let refused = Caller::Node(2).speaks_for(3, "a vote").unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
    assert!(
        refused
            .message()
            .contains("node 2 cannot send a vote as node 3")
    );
    assert!(Caller::Anonymous.speaks_for(3, "a vote").is_ok());
    let request = Request::new(());
    assert_eq!(Caller::of(&request), Caller::Anonymous);
}
