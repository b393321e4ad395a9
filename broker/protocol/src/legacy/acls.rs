//! CreateAcls, DescribeAcls and DeleteAcls v0: the ACL versions from before resource pattern
//! types (KIP-290), which Kafka 4.0 removed.
//!
//! A v0 request names literal resources only, so it decodes with the LITERAL pattern type (3):
//! created ACLs are literal and filters match literal ACLs only, as in Kafka. A v0 answer has
//! no place for a pattern type, so one that would carry a non-literal ACL is refused rather
//! than passed off as literal. CreateAcls v0 answers as v1.

use anyhow::{Result, bail};
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
use kafka_protocol::messages::{
    CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse,
    DescribeAclsRequest, DescribeAclsResponse,
};
use kafka_protocol::protocol::buf::ByteBuf;

use super::wire;

/// Kafka's LITERAL resource pattern type, the only one v0 knows.
const LITERAL: i8 = 3;
/// The CreateAcls version whose response v0 shares.
const CREATE_ACLS_RESPONSE_AS: i16 = 1;

pub fn decode_create_acls<B: ByteBuf>(buf: &mut B) -> Result<CreateAclsRequest> {
    let mut request = CreateAclsRequest::default();
    // Smallest creation: type (1), three strings (6), operation and permission (2).
    request.creations = wire::array(buf, 9, |buf| {
        let mut c = AclCreation::default();
        c.resource_type = wire::i8(buf)?;
        c.resource_name = wire::string(buf)?;
        c.resource_pattern_type = LITERAL;
        c.principal = wire::string(buf)?;
        c.host = wire::string(buf)?;
        c.operation = wire::i8(buf)?;
        c.permission_type = wire::i8(buf)?;
        Ok(c)
    })?;
    Ok(request)
}

pub fn encode_create_acls_response(response: &CreateAclsResponse) -> Result<Bytes> {
    super::encode_as(response, CREATE_ACLS_RESPONSE_AS)
}

pub fn decode_describe_acls<B: ByteBuf>(buf: &mut B) -> Result<DescribeAclsRequest> {
    let mut request = DescribeAclsRequest::default();
    request.resource_type_filter = wire::i8(buf)?;
    request.resource_name_filter = wire::nullable_string(buf)?;
    request.pattern_type_filter = LITERAL;
    request.principal_filter = wire::nullable_string(buf)?;
    request.host_filter = wire::nullable_string(buf)?;
    request.operation = wire::i8(buf)?;
    request.permission_type = wire::i8(buf)?;
    Ok(request)
}

pub fn encode_describe_acls_response(response: &DescribeAclsResponse) -> Result<Bytes> {
    let mut out = BytesMut::new();
    out.put_i32(response.throttle_time_ms);
    out.put_i16(response.error_code);
    wire::put_nullable_string(&mut out, response.error_message.as_deref())?;
    wire::put_array(&mut out, &response.resources, |out, r| {
        literal_only(r.pattern_type)?;
        out.put_i8(r.resource_type);
        wire::put_string(out, &r.resource_name)?;
        wire::put_array(out, &r.acls, |out, a| {
            wire::put_string(out, &a.principal)?;
            wire::put_string(out, &a.host)?;
            out.put_i8(a.operation);
            out.put_i8(a.permission_type);
            Ok(())
        })
    })?;
    Ok(out.freeze())
}

pub fn decode_delete_acls<B: ByteBuf>(buf: &mut B) -> Result<DeleteAclsRequest> {
    let mut request = DeleteAclsRequest::default();
    // Smallest filter: type (1), three null strings (6), operation and permission (2).
    request.filters = wire::array(buf, 9, |buf| {
        let mut f = DeleteAclsFilter::default();
        f.resource_type_filter = wire::i8(buf)?;
        f.resource_name_filter = wire::nullable_string(buf)?;
        f.pattern_type_filter = LITERAL;
        f.principal_filter = wire::nullable_string(buf)?;
        f.host_filter = wire::nullable_string(buf)?;
        f.operation = wire::i8(buf)?;
        f.permission_type = wire::i8(buf)?;
        Ok(f)
    })?;
    Ok(request)
}

pub fn encode_delete_acls_response(response: &DeleteAclsResponse) -> Result<Bytes> {
    let mut out = BytesMut::new();
    out.put_i32(response.throttle_time_ms);
    wire::put_array(&mut out, &response.filter_results, |out, f| {
        out.put_i16(f.error_code);
        wire::put_nullable_string(out, f.error_message.as_deref())?;
        wire::put_array(out, &f.matching_acls, |out, a| {
            literal_only(a.pattern_type)?;
            out.put_i16(a.error_code);
            wire::put_nullable_string(out, a.error_message.as_deref())?;
            out.put_i8(a.resource_type);
            wire::put_string(out, &a.resource_name)?;
            wire::put_string(out, &a.principal)?;
            wire::put_string(out, &a.host)?;
            out.put_i8(a.operation);
            out.put_i8(a.permission_type);
            Ok(())
        })
    })?;
    Ok(out.freeze())
}

fn literal_only(pattern_type: i8) -> Result<()> {
    if pattern_type != LITERAL {
        bail!("a v0 ACL answer cannot carry pattern type {pattern_type}, only LITERAL");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::delete_acls_response::{
        DeleteAclsFilterResult, DeleteAclsMatchingAcl,
    };
    use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
    use kafka_protocol::protocol::StrBytes;

    fn s(v: &'static str) -> StrBytes {
        StrBytes::from_static_str(v)
    }

    fn put(b: &mut BytesMut, v: &str) {
        b.put_i16(v.len() as i16);
        b.put_slice(v.as_bytes());
    }

    #[test]
    fn create_acls_v0_creates_literal_acls() {
        let mut b = BytesMut::new();
        b.put_i32(1);
        b.put_i8(2);
        put(&mut b, "t");
        put(&mut b, "User:alice");
        put(&mut b, "*");
        b.put_i8(3);
        b.put_i8(3);
        let full = b.freeze();
        let mut buf = full.clone();
        let r = decode_create_acls(&mut buf).unwrap();
        assert!(buf.is_empty());
        let c = &r.creations[0];
        assert_eq!((c.resource_type, c.resource_pattern_type), (2, LITERAL));
        assert_eq!(
            (&*c.resource_name, &*c.principal, &*c.host),
            ("t", "User:alice", "*")
        );
        assert_eq!((c.operation, c.permission_type), (3, 3));
        for cut in 0..full.len() {
            assert!(
                decode_create_acls(&mut full.slice(..cut)).is_err(),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn describe_acls_v0_filters_literal_and_answers_without_pattern_type() {
        let mut b = BytesMut::new();
        b.put_i8(1);
        b.put_i16(-1);
        put(&mut b, "User:alice");
        b.put_i16(-1);
        b.put_i8(1);
        b.put_i8(1);
        let mut buf = b.freeze();
        let r = decode_describe_acls(&mut buf).unwrap();
        assert!(buf.is_empty());
        assert_eq!(r.pattern_type_filter, LITERAL);
        assert_eq!(r.resource_name_filter, None);
        assert_eq!(r.principal_filter.as_deref(), Some("User:alice"));

        let mut acl = AclDescription::default();
        acl.principal = s("U");
        acl.host = s("*");
        acl.operation = 3;
        acl.permission_type = 3;
        let mut res = DescribeAclsResource::default();
        res.resource_type = 2;
        res.resource_name = s("t");
        res.pattern_type = LITERAL;
        res.acls.push(acl);
        let mut resp = DescribeAclsResponse::default();
        resp.error_message = None;
        resp.resources.push(res.clone());
        let body = encode_describe_acls_response(&resp).unwrap();
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0, 0, 1,
            2, 0, 1, b't', 0, 0, 0, 1, 0, 1, b'U', 0, 1, b'*', 3, 3,
        ];
        assert_eq!(&body[..], expected);
        res.pattern_type = 4;
        resp.resources = vec![res];
        assert!(encode_describe_acls_response(&resp).is_err());
    }

    #[test]
    fn delete_acls_v0_round_trip_the_layout() {
        let mut b = BytesMut::new();
        b.put_i32(1);
        b.put_i8(2);
        put(&mut b, "t");
        b.put_i16(-1);
        b.put_i16(-1);
        b.put_i8(1);
        b.put_i8(1);
        let mut buf = b.freeze();
        let r = decode_delete_acls(&mut buf).unwrap();
        assert!(buf.is_empty());
        assert_eq!(r.filters[0].pattern_type_filter, LITERAL);
        assert_eq!(r.filters[0].resource_name_filter.as_deref(), Some("t"));

        let mut m = DeleteAclsMatchingAcl::default();
        m.error_message = None;
        m.resource_type = 2;
        m.resource_name = s("t");
        m.pattern_type = LITERAL;
        m.principal = s("U");
        m.host = s("*");
        m.operation = 3;
        m.permission_type = 3;
        let mut f = DeleteAclsFilterResult::default();
        f.error_message = None;
        f.matching_acls.push(m);
        let mut resp = DeleteAclsResponse::default();
        resp.filter_results.push(f);
        let body = encode_delete_acls_response(&resp).unwrap();
        #[rustfmt::skip]
        let expected: &[u8] = &[
            0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0xff, 0xff, 0, 0, 0, 1,
            0, 0, 0xff, 0xff, 2, 0, 1, b't', 0, 1, b'U', 0, 1, b'*', 3, 3,
        ];
        assert_eq!(&body[..], expected);
    }
}
