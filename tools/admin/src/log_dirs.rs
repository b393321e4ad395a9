//! Partition sizes from DescribeLogDirs: how many bytes each replica on a broker holds, which
//! a rebalance plan uses to move small partitions first and to count the bytes it copies.

use std::collections::BTreeMap;

use kafka_protocol::messages::DescribeLogDirsRequest;

use crate::cluster::{Admin, AdminError, BrokerInfo, Result};
use crate::wire::WireError;

impl Admin {
    /// Bytes of every partition replica `broker` holds, by (topic, partition), summed over its
    /// log dirs. `None` when the broker does not serve DescribeLogDirs (sizes unknown, which
    /// is not an error).
    pub fn replica_sizes(
        &self,
        broker: &BrokerInfo,
    ) -> Result<Option<BTreeMap<(String, i32), u64>>> {
        let mut conn = self.open(broker)?;
        // A null topic list asks for every partition in every log dir.
        let request = DescribeLogDirsRequest::default().with_topics(None);
        let response = match conn.call(&request, 1..=4) {
            Ok(r) => r,
            Err(WireError::Unsupported { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        if response.error_code != 0 {
            return Err(AdminError::refused(
                format!("DescribeLogDirs on broker {}", broker.id),
                response.error_code,
                None,
            ));
        }
        let mut sizes = BTreeMap::new();
        for dir in response.results.iter().filter(|d| d.error_code == 0) {
            for t in &dir.topics {
                for p in &t.partitions {
                    let size = u64::try_from(p.partition_size).unwrap_or(0);
                    *sizes
                        .entry((t.name.0.to_string(), p.partition_index))
                        .or_insert(0) += size;
                }
            }
        }
        Ok(Some(sizes))
    }
}
