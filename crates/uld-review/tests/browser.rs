//! End to end in a real headless browser (Chromium over WebDriver, Debian's
//! `chromium` and `chromium-driver`; `.ci/run` installs them): a reviewer
//! accepts two candidates, rejects one, drags a box and accepts it,
//! reloads, and finds every decision again, in the page and in
//! `reviewed.csv`. The test also takes the README's screenshot
//! (`ULD_UPDATE_SCREENSHOT=1` writes it to `docs/review.png`).

mod common;

use std::net::TcpListener as StdListener;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use fantoccini::actions::{InputSource, MOUSE_BUTTON_LEFT, MouseActions, PointerAction};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use uld_data::deeplesion::read_dl_info;
use uld_review::router;

use common::{open_review, tiny_review};

fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn chromedriver() -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join("chromedriver"))
            .find(|p| p.is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "chromedriver is not installed: `apt-get install chromium chromium-driver` \
             (.ci/run installs them when missing)"
        )
    })
}

/// Waits (up to 20 s) until `script` returns `want`.
async fn wait_until(client: &Client, script: &str, want: Value) {
    let mut last = Value::Null;
    for _ in 0..200 {
        last = client.execute(script, vec![]).await.unwrap();
        if last == want {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("`{script}` stayed {last}, expected {want}");
}

const STATUSES: &str =
    "return [...document.querySelectorAll('#list li')].map((li) => li.dataset.status);";

async fn press(client: &Client, key: &str) {
    client
        .find(Locator::Css("body"))
        .await
        .unwrap()
        .send_keys(key)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reviewer_decides_drags_a_box_reloads_and_finds_everything_again() {
    let driver_path = chromedriver();
    let dir = tempfile::tempdir().unwrap();
    let (root, mined) = tiny_review(dir.path());
    let out = dir.path().join("reviewed.csv");
    let state = open_review(&root, &mined, &out);
    let total = state.decided();
    assert_eq!(total, 0);
    let token = state.token().to_string();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router(state)).await.unwrap() });

    let port = free_port();
    let mut driver = tokio::process::Command::new(driver_path)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut capabilities = serde_json::Map::new();
    capabilities.insert(
        "goog:chromeOptions".into(),
        json!({"args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                        "--disable-dev-shm-usage", "--window-size=1280,800"]}),
    );
    let mut client = None;
    for _ in 0..100 {
        match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities.clone())
            .connect(&format!("http://127.0.0.1:{port}"))
            .await
        {
            Ok(c) => {
                client = Some(c);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let client = client.expect("chromedriver did not start");
    let url = format!("http://{address}/?token={token}");
    client.goto(&url).await.unwrap();
    let count: usize = read_dl_info(&mined).unwrap().len();
    wait_until(
        &client,
        "return document.getElementById('counter').textContent;",
        json!(format!("0 / {count} decided")),
    )
    .await;
    wait_until(
        &client,
        "return state.image !== null && state.current;",
        json!(0),
    )
    .await;

    // Accept the first two candidates and reject the third, by keyboard;
    // each decision moves on to the next undecided candidate.
    press(&client, "a").await;
    wait_until(&client, "return state.current;", json!(1)).await;
    press(&client, "a").await;
    wait_until(&client, "return state.current;", json!(2)).await;
    press(&client, "r").await;
    wait_until(&client, "return state.current;", json!(3)).await;
    wait_until(
        &client,
        "return state.image !== null && state.detail.id;",
        json!(3),
    )
    .await;

    // Drag the fourth candidate's box by (24, 12) screen pixels, then accept it.
    let at = client
        .execute(
            "const r = document.getElementById('view').getBoundingClientRect(), b = state.box, z = state.zoom;\
             return [r.left + (b[0] + b[2]) / 2 * z, r.top + (b[1] + b[3]) / 2 * z, z, b];",
            vec![],
        )
        .await
        .unwrap();
    let (x, y, zoom) = (
        at[0].as_f64().unwrap(),
        at[1].as_f64().unwrap(),
        at[2].as_f64().unwrap(),
    );
    let before: Vec<f64> = at[3]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    let drag = MouseActions::new("mouse".into())
        .then(PointerAction::MoveTo {
            duration: None,
            x,
            y,
        })
        .then(PointerAction::Down {
            button: MOUSE_BUTTON_LEFT,
        })
        .then(PointerAction::MoveBy {
            duration: Some(Duration::from_millis(200)),
            x: 24.0,
            y: 12.0,
        })
        .then(PointerAction::Up {
            button: MOUSE_BUTTON_LEFT,
        });
    client.perform_actions(drag).await.unwrap();
    press(&client, "a").await;
    wait_until(
        &client,
        STATUSES,
        json!(
            (0..count)
                .map(|i| match i {
                    0 | 1 | 3 => "accepted",
                    2 => "rejected",
                    _ => "pending",
                })
                .collect::<Vec<_>>()
        ),
    )
    .await;

    // The README's screenshot: the truth toggle on, the next candidate shown.
    press(&client, "t").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let shot = client.screenshot().await.unwrap();
    assert_eq!(&shot[1..4], b"PNG");
    if std::env::var_os("ULD_UPDATE_SCREENSHOT").is_some() {
        let docs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs");
        std::fs::create_dir_all(&docs).unwrap();
        std::fs::write(docs.join("review.png"), &shot).unwrap();
    }

    // Reload: the page shows every decision again.
    client.refresh().await.unwrap();
    wait_until(
        &client,
        "return document.getElementById('counter').textContent;",
        json!(format!("4 / {count} decided")),
    )
    .await;
    let statuses = client.execute(STATUSES, vec![]).await.unwrap();
    assert_eq!(statuses[2], "rejected");
    assert_eq!(statuses[3], "accepted");
    client.close().await.unwrap();
    driver.kill().await.ok();

    // The file: four rows, the dragged box moved by the drag over the zoom.
    let rows = read_dl_info(&out).unwrap();
    assert_eq!(rows.len(), 4);
    let text = std::fs::read_to_string(&out).unwrap();
    let verdicts: Vec<&str> = text
        .lines()
        .skip(1)
        .map(|l| {
            if l.contains(",accepted,") {
                "accepted"
            } else {
                "rejected"
            }
        })
        .collect();
    assert_eq!(verdicts, ["accepted", "accepted", "rejected", "accepted"]);
    let moved = rows[3].bbox.to_array();
    let (dx, dy) = (24.0 / zoom, 12.0 / zoom);
    assert!(
        (moved[0] as f64 - before[0] - dx).abs() < 1.5,
        "{moved:?} from {before:?}, zoom {zoom}"
    );
    assert!(
        (moved[1] as f64 - before[1] - dy).abs() < 1.5,
        "{moved:?} from {before:?}, zoom {zoom}"
    );
    assert!(((moved[2] - moved[0]) as f64 - (before[2] - before[0])).abs() < 1e-3);
}
