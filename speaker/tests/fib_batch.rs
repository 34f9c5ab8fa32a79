//! The FIB writer against the real kernel, in a network namespace of its own:
//! batches of requests with one acknowledgement, and every refusal in a batch
//! reported for the operation it belongs to, the others done.

mod common;

use std::collections::BTreeMap;
use std::net::IpAddr;

use common::{in_netns, run, Lab};
use ipnet::IpNet;
use speaker::fib::{Fib, BATCH};
use speaker::messages::{FibError, FibOp};
use speaker::metrics::SharedMetrics;

const PROTO: u8 = 201;

/// Runs `f` with a Fib whose socket lives in namespace `ns`.
fn with_fib<T: Send + 'static>(ns: &str, f: impl FnOnce(&mut Fib) -> T + Send + 'static) -> T {
    in_netns(ns, move || {
        let mut fib = Fib::new(PROTO, 254, SharedMetrics::default()).expect("netlink socket");
        f(&mut fib)
    })
}

fn add(prefix: &str, via: &str) -> FibOp {
    FibOp::Add {
        prefix: prefix.parse().unwrap(),
        next_hops: vec![via.parse().unwrap()],
    }
}

/// Our routes in `ns` as `ip` shows them: prefix -> gateway.
fn ours(lab: &Lab, ns: &str) -> BTreeMap<String, Vec<String>> {
    lab.own_routes(ns)
}

#[test]
fn a_batch_is_applied_and_each_refusal_belongs_to_its_operation() {
    let lab = Lab::new("fibbatch");
    let ns = lab.a.clone();
    // Another owner's route, and one of ours a previous run left with another next hop.
    run(&format!("ip -n {ns} route add 10.250.0.7/32 via 10.0.0.2 proto static")).unwrap();
    run(&format!(
        "ip -n {ns} route add 10.250.0.8/32 via 10.0.0.99 proto {PROTO}"
    ))
    .unwrap();

    // Three batches' worth, with the odd ones in the middle of the first.
    let mut ops: Vec<FibOp> = (0..(2 * BATCH + 10) as u32)
        .map(|i| add(&format!("10.251.{}.{}/32", i / 256, i % 256), "10.0.0.2"))
        .collect();
    ops[5] = add("10.250.0.7/32", "10.0.0.2"); // held by another owner
    ops[6] = add("10.250.0.9/32", "192.0.2.1"); // next hop not reachable
    ops[7] = add("10.250.0.8/32", "10.0.0.2"); // ours, left before: taken over
    ops[8] = FibOp::Remove {
        prefix: "10.250.0.10/32".parse().unwrap(),
    }; // not there: done
    ops[9] = FibOp::Replace {
        prefix: "10.250.0.11/32".parse().unwrap(),
        next_hops: vec!["10.0.0.2".parse().unwrap()],
    };
    let batches: Vec<Vec<FibOp>> = ops.chunks(BATCH).map(|c| c.to_vec()).collect();
    let (errors, own) = with_fib(&ns, move |fib| {
        let errors: Vec<Option<FibError>> = batches.iter().flat_map(|b| fib.apply_batch(b)).collect();
        (errors, fib.own_routes().unwrap())
    });

    for (i, e) in errors.iter().enumerate() {
        match i {
            5 => assert_eq!(e, &Some(FibError::HeldByOther), "op {i}: {:?}", ops[i]),
            6 => assert_eq!(
                e,
                &Some(FibError::Failed("Network is unreachable".into())),
                "op {i}: {:?}",
                ops[i]
            ),
            _ => assert_eq!(e, &None, "op {i}: {:?}", ops[i]),
        }
    }
    let kernel = ours(&lab, &ns);
    assert_eq!(kernel.len(), 2 * BATCH + 10 - 5 + 2, "{kernel:?}");
    assert_eq!(kernel["10.250.0.8/32"], vec!["10.0.0.2".to_string()]);
    assert_eq!(kernel["10.250.0.11/32"], vec!["10.0.0.2".to_string()]);
    assert!(!kernel.contains_key("10.250.0.9/32"));
    // The other owner's route is as it was.
    let other = lab
        .route(&ns, "10.250.0.7/32", Some("static"))
        .expect("the static route");
    assert_eq!(other["gateway"], "10.0.0.2");
    // own_routes reads back exactly what the kernel holds of ours.
    let read: BTreeMap<String, Vec<String>> = own
        .iter()
        .map(|r| (r.prefix.to_string(), r.gateways.iter().map(IpAddr::to_string).collect()))
        .collect();
    assert_eq!(read, kernel);

    // And a stop removes every one of ours, nothing else.
    let removed = with_fib(&ns, |fib| fib.remove_own().unwrap());
    assert_eq!(removed, kernel.len());
    assert!(ours(&lab, &ns).is_empty());
    assert!(lab.route(&ns, "10.250.0.7/32", Some("static")).is_some());
}

#[test]
fn one_operation_at_a_time_too() {
    let lab = Lab::new("fibone");
    let ns = lab.a.clone();
    let prefix: IpNet = "10.252.0.0/26".parse().unwrap();
    let errors = with_fib(&ns, move |fib| {
        vec![
            fib.apply(&FibOp::Add {
                prefix,
                next_hops: vec!["10.0.0.2".parse().unwrap()],
            }),
            // Two next hops: a multipath route.
            fib.apply(&FibOp::Replace {
                prefix,
                next_hops: vec!["10.0.0.2".parse().unwrap(), "10.0.0.3".parse().unwrap()],
            }),
        ]
    });
    assert_eq!(errors, vec![None, None]);
    assert_eq!(
        ours(&lab, &ns)["10.252.0.0/26"],
        vec!["10.0.0.2".to_string(), "10.0.0.3".to_string()]
    );
    let errors = with_fib(&ns, move |fib| {
        vec![
            fib.apply(&FibOp::Remove { prefix }),
            fib.apply(&FibOp::Remove { prefix }),
        ]
    });
    assert_eq!(errors, vec![None, None]);
    assert!(ours(&lab, &ns).is_empty());
}
