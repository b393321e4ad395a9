//! The operator's integration tests, one binary: each file below was a test target of its own,
//! and linking each against kube, k8s-openapi and the operator took a minute of CPU on two
//! cores (21 of them, about 16 minutes of a cold build). cargo-nextest still runs every test
//! in a process of its own.

mod common;

mod build;
mod cli;
mod cluster_cert_manager;
mod cluster_certificates;
mod cluster_day2;
mod cluster_listeners;
mod cluster_monitoring;
mod cluster_rack;
mod cluster_reconcile;
mod cluster_storage;
mod controllers;
mod examples;
mod leader_election;
mod operator_prometheus;
mod pod_security;
mod render;
mod scaling_brokers;
mod topic_broker;
mod topic_reconcile;
mod user_broker;
mod user_reconcile;
