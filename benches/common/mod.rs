//! What every bench starts from: the renderer with the shipped and the
//! installed fonts, and the demo certificate's source and folder.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use signet::config::{DEFAULT_EXTRA_FONTS, DEMO_TEMPLATE, DEMO_USER};
use signet::render::{RenderLimits, Renderer};

pub fn setup() -> (Arc<Renderer>, String, PathBuf) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let limits = RenderLimits {
        max_pixels: 25_000_000,
        max_image_bytes: 8 << 20,
        max_image_pixels: 4 << 20,
        max_memory_bytes: 1 << 30,
        memory_wait: std::time::Duration::from_secs(10),
        max_nodes: 100_000,
    };
    let extra: Vec<_> = DEFAULT_EXTRA_FONTS.iter().map(PathBuf::from).collect();
    let renderer =
        Arc::new(Renderer::new(&root.join("fonts"), &extra, limits).expect("fonts load"));
    let dir = root.join("templates").join(DEMO_USER);
    let source =
        std::fs::read_to_string(dir.join(format!("{DEMO_TEMPLATE}.svg"))).expect("demo template");
    (renderer, source, dir)
}
