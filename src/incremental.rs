//! Incremental rendering: a cache miss paints only what its edits can
//! change and compresses only the rows that did change.
//!
//! Requests for one template differ only in their edited layers. The
//! template is cut before the first top-level element holding an edit (see
//! `template::split`); the part before the cut is painted once per
//! template version, cut and output size, into a *base* kept here with the
//! whole default render encoded in independent PNG bands (`bands`). A miss
//! copies the base canvas, paints the part from the cut on — with the edits
//! — over it, compares each row with the default render, and writes the
//! PNG from the unchanged bands plus the re-compressed changed ones.
//!
//! The canvas equals a whole render because resvg paints the root's
//! children in order onto one canvas; a base is only kept after its own
//! default render, painted in two parts, equalled a whole render pixel for
//! pixel. Templates that cannot be cut, PDF output, and anything
//! unexpected go to the whole render, and so does the first miss needing a
//! base, which only queues the base's build (see `Incremental::base`).

use std::collections::HashSet;
use std::ops::Range;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Instant;

use resvg::tiny_skia::Pixmap;

use crate::bands::{self, Bands};
use crate::budget::canvas_bytes;
use crate::deadline;
use crate::options::RenderOptions;
use crate::render::{self, RenderError, Rendered, Renderer};
use crate::request::Format;
use crate::template::{Applied, Plan, Template};
use resvg::usvg;

/// Which bases exist: one per template version, cut and output size.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct BaseKey {
    template: [u8; 32],
    cut: usize,
    width: u32,
    height: u32,
    scale: u32,
}

/// The shared part of every render of one template at one cut and size.
struct Base {
    /// The elements before the cut, painted.
    before: Pixmap,
    /// Each drawing element from the cut on, parsed alone as the template
    /// has it: painted over `before` in order, they give the default render.
    elements: Vec<(usize, usvg::Tree)>,
    /// Per row: the default render differs from `before` there.
    differs: Vec<bool>,
    /// The default render's rows from the first to the last that differ.
    rows: Range<u32>,
    default_rows: Vec<u8>,
    /// The default render, encoded band by band.
    png: Bands,
}

impl Base {
    fn weight(&self) -> u32 {
        let bytes = self.before.data().len() + self.default_rows.len() + self.png.weight();
        u32::try_from(bytes).unwrap_or(u32::MAX)
    }

    /// Row `y` of the default render.
    fn default_row(&self, y: u32) -> &[u8] {
        let stride = self.before.width() as usize * 4;
        if self.rows.contains(&y) {
            let at = (y - self.rows.start) as usize * stride;
            &self.default_rows[at..at + stride]
        } else {
            row(&self.before, y)
        }
    }
}

/// A canvas and encoder reused by renders, so the large buffers are not
/// allocated and freed on every miss.
struct Workspace {
    /// The base whose `before` canvas `canvas` holds, except for `dirty`.
    base: Option<BaseKey>,
    canvas: Pixmap,
    dirty: Range<u32>,
    encoder: bands::Encoder,
}

/// Bases, bounded in bytes, and spare workspaces.
pub struct Incremental {
    /// `None` when turned off (a bound of 0).
    bases: Option<Bases>,
    /// Bases queued for the builder thread and not yet kept.
    queued: Arc<Mutex<HashSet<BaseKey>>>,
    /// The builder thread's queue, started on first use. One thread: a
    /// build costs about two whole renders of CPU, outside the render
    /// pool's bound.
    builder: Mutex<Option<mpsc::Sender<Job>>>,
    spare: Mutex<Vec<Workspace>>,
}

type Bases = moka::sync::Cache<BaseKey, Option<Arc<Base>>>;
type Job = Box<dyn FnOnce() + Send>;

/// Canvases' worth of memory a base build is leased: the canvas before
/// the cut, the default render, the whole render it is checked against,
/// and the layers of the two painters running side by side.
const BUILD_CANVASES: u64 = 5;

/// Canvases' worth of memory an incremental miss is leased beside its
/// workspace: the edited elements' layers and the re-compressed bands.
const INCREMENTAL_CANVASES: u64 = 2;

/// Bases queued at once; a miss needing another renders whole meanwhile.
const QUEUED_BUILDS: usize = 64;

/// What `Incremental::render` was given.
#[derive(Clone, Copy)]
struct Miss<'a> {
    renderer: &'a Arc<Renderer>,
    template: &'a Arc<Template>,
    plan: &'a Plan<'a>,
    applied: &'a Applied,
    format: Format,
    options: &'a RenderOptions,
}

/// How an image was rendered, for logs and `Server-Timing`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    Incremental,
    Whole,
}

impl Incremental {
    /// Keeps bases up to `max_bytes` (each about four bytes per output
    /// pixel); 0 turns incremental rendering off.
    pub fn new(max_bytes: u64) -> Incremental {
        let bases = (max_bytes > 0).then(|| {
            // Least recently used goes first. The default policy may refuse
            // a new base in favour of often used ones, and a refused base
            // would be rebuilt by the next miss, and the next.
            moka::sync::Cache::builder()
                .eviction_policy(moka::policy::EvictionPolicy::lru())
                .max_capacity(max_bytes)
                .weigher(|_, base: &Option<Arc<Base>>| base.as_ref().map_or(64, |b| b.weight()))
                .build()
        });
        Incremental {
            bases,
            queued: Arc::default(),
            builder: Mutex::new(None),
            spare: Mutex::new(Vec::new()),
        }
    }

    /// Bases kept and their bytes, for `/healthz`.
    pub fn usage(&self) -> (u64, u64) {
        self.bases.as_ref().map_or((0, 0), |b| {
            // Counts are updated by pending maintenance; run it first.
            b.run_pending_tasks();
            (b.entry_count(), b.weighted_size())
        })
    }

    /// Renders `applied`, the output of `template.apply(plan)`, to
    /// `format`: incrementally when it can, whole otherwise. Stops between
    /// stages once the job's deadline has passed.
    pub fn render(
        &self,
        renderer: &Arc<Renderer>,
        template: &Arc<Template>,
        plan: &Plan<'_>,
        applied: &Applied,
        format: Format,
        options: &RenderOptions,
    ) -> Result<(Rendered, Path), RenderError> {
        deadline::check()?;
        let mut build = None;
        let miss = Miss {
            renderer,
            template,
            plan,
            applied,
            format,
            options,
        };
        if let Some(rendered) = self.try_render(&miss, &mut build) {
            return Ok((rendered, Path::Incremental));
        }
        // An incremental render cut short by the deadline must not start
        // a whole one.
        deadline::check()?;
        let rendered = renderer.render(&applied.svg, &applied.images, format, options);
        // Queued after this render, not beside it: on two cores the first
        // response after a start would otherwise wait twice as long.
        if let Some(build) = build {
            self.queue(build);
        }
        Ok((rendered?, Path::Whole))
    }

    /// Renders incrementally, or `None`, leaving in `build` a base build
    /// to queue.
    fn try_render(&self, miss: &Miss<'_>, build: &mut Option<Job>) -> Option<Rendered> {
        let Miss {
            renderer,
            template,
            plan,
            applied,
            format,
            options,
        } = *miss;
        let bases = self.bases.as_ref()?;
        if format == Format::Pdf {
            return None;
        }
        let started = Instant::now();
        let cut = template.cut(plan).ok()?;
        // Any error here is left for the whole render to report.
        let (width, height, k) = renderer
            .output_size(template.size(), |w| options.factor(w))
            .ok()?;
        let key = BaseKey {
            template: template.hash,
            cut,
            width,
            height,
            scale: k.to_bits(),
        };
        let base = match bases.get(&key) {
            Some(base) => base?,
            None => self.base(bases, renderer, template, key.clone(), k, build)?,
        };

        // The workspace canvas, the edited elements' layers, the bands.
        let _lease = renderer
            .lease(INCREMENTAL_CANVASES * canvas_bytes(width, height) + applied.images.bytes())
            .ok()?;
        let mut ws = self.workspace(&key, &base);
        let painted = paint_after(renderer, template, plan, applied, cut, k, &base, &mut ws);
        // Partly painted, or painted but out of time before the rows were
        // compared: the next user must copy the whole canvas.
        if painted.is_none() || deadline::check().is_err() {
            ws.base = None;
            self.give_back(ws);
            return None;
        }
        let same = compare(&base, &mut ws);
        let rastered = Instant::now();
        let body = match format {
            Format::Png => base
                .png
                .png(&ws.canvas, &same, &mut ws.encoder)
                .or_else(|| renderer.encode(&ws.canvas, format, options).ok()),
            _ => renderer.encode(&ws.canvas, format, options).ok(),
        };
        let encoded = Instant::now();
        self.give_back(ws);
        Some(Rendered {
            body: body?,
            raster: rastered - started,
            encode: encoded - rastered,
        })
    }

    /// The base for `key`, not yet kept. The first miss that needs it
    /// leaves its build in `later`, for the builder thread, and renders
    /// whole, so no request waits for a build it did not ask to wait for —
    /// the first response after a start or a template edit among them.
    /// Misses that follow wait for that build, or run it if it has not
    /// begun.
    fn base(
        &self,
        bases: &Bases,
        renderer: &Arc<Renderer>,
        template: &Arc<Template>,
        key: BaseKey,
        k: f32,
        later: &mut Option<Job>,
    ) -> Option<Arc<Base>> {
        let max_bytes = bases.policy().max_capacity().unwrap_or(u64::MAX);
        // A base is at least its canvas: one the bound cannot hold is not
        // built, since it would be thrown away after costing a build.
        if canvas_bytes(key.width, key.height) > max_bytes {
            return None;
        }
        let build = {
            let (renderer, template, key) =
                (Arc::clone(renderer), Arc::clone(template), key.clone());
            move || {
                let size = (key.width, key.height);
                let _lease = renderer.lease(
                    BUILD_CANVASES * canvas_bytes(key.width, key.height) + template.images.bytes(),
                )?;
                let base = build(&renderer, &template, key.cut, k, size)?;
                // One the bound cannot hold would be rebuilt on every miss.
                Ok::<_, RenderError>(
                    base.filter(|b| u64::from(b.weight()) <= max_bytes)
                        .map(Arc::new),
                )
            }
        };
        {
            let mut queued = self.queued.lock().unwrap_or_else(|e| e.into_inner());
            if !queued.contains(&key) {
                if queued.len() < QUEUED_BUILDS {
                    let (bases, queue, built) =
                        (bases.clone(), Arc::clone(&self.queued), key.clone());
                    let job = Box::new(move || {
                        // An error is the whole render's to report.
                        let _ = bases.try_get_with(built.clone(), build);
                        queue
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .remove(&built);
                    });
                    // Queued now: a miss that sees the key waits for the
                    // build instead of leaving one more.
                    queued.insert(key);
                    *later = Some(job);
                }
                return None;
            }
        }
        bases.try_get_with(key, build).ok()?
    }

    /// Hands `job` to the builder thread, starting it if need be. Should
    /// that fail, misses wait for their base's build as they would for a
    /// queued one, and run it themselves.
    fn queue(&self, job: Job) {
        let mut builder = self.builder.lock().unwrap_or_else(|e| e.into_inner());
        let job = match builder.as_ref() {
            Some(tx) => match tx.send(job) {
                Ok(()) => return,
                // The thread is gone (a build panicked): start another.
                Err(mpsc::SendError(job)) => job,
            },
            None => job,
        };
        let (tx, rx) = mpsc::channel::<Job>();
        let started = std::thread::Builder::new()
            .name("signet-base".into())
            .spawn(move || rx.into_iter().for_each(|job| job()));
        if started.is_ok() && tx.send(job).is_ok() {
            *builder = Some(tx);
        }
    }

    fn give_back(&self, ws: Workspace) {
        self.spare
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(ws);
    }

    /// A workspace holding `base`'s canvas: the one that held it last when
    /// there is one, restoring only the rows the last render changed.
    fn workspace(&self, key: &BaseKey, base: &Base) -> Workspace {
        let found = {
            let mut spare = self.spare.lock().unwrap_or_else(|e| e.into_inner());
            let at = spare
                .iter()
                .position(|w| w.base.as_ref() == Some(key))
                .or_else(|| spare.len().checked_sub(1));
            at.map(|i| spare.swap_remove(i))
        };
        let Some(mut ws) = found else {
            return Workspace {
                base: Some(key.clone()),
                canvas: base.before.clone(),
                dirty: 0..0,
                encoder: bands::Encoder::default(),
            };
        };
        let from = &base.before;
        if ws.base.as_ref() == Some(key) {
            let stride = from.width() as usize * 4;
            let bytes = ws.dirty.start as usize * stride..ws.dirty.end as usize * stride;
            ws.canvas.data_mut()[bytes.clone()].copy_from_slice(&from.data()[bytes]);
        } else if (ws.canvas.width(), ws.canvas.height()) == (from.width(), from.height()) {
            ws.canvas.data_mut().copy_from_slice(from.data());
        } else {
            ws.canvas = from.clone();
        }
        ws.base = Some(key.clone());
        ws.dirty = 0..0;
        ws
    }
}

fn row(pixmap: &Pixmap, y: u32) -> &[u8] {
    let stride = pixmap.width() as usize * 4;
    &pixmap.data()[y as usize * stride..(y as usize + 1) * stride]
}

/// Per row of the workspace canvas: the same as the default render. Also
/// records which rows now differ from the base canvas, to restore later.
fn compare(base: &Base, ws: &mut Workspace) -> Vec<bool> {
    let height = base.before.height();
    let mut same = Vec::with_capacity(height as usize);
    let mut dirty: Option<Range<u32>> = None;
    for y in 0..height {
        let now = row(&ws.canvas, y);
        if now == row(&base.before, y) {
            same.push(!base.differs[y as usize]);
        } else {
            same.push(base.differs[y as usize] && now == base.default_row(y));
            dirty = Some(dirty.map_or(y..y + 1, |d| d.start..y + 1));
        }
    }
    ws.dirty = dirty.unwrap_or(0..0);
    same
}

/// Paints the elements from the cut on over the base canvas in `ws`, in
/// document order: the base's own trees for unedited elements, and each
/// run of consecutive edited elements parsed alone from `applied`.
#[allow(clippy::too_many_arguments)]
fn paint_after(
    renderer: &Renderer,
    template: &Template,
    plan: &Plan<'_>,
    applied: &Applied,
    cut: usize,
    k: f32,
    base: &Base,
    ws: &mut Workspace,
) -> Option<()> {
    let elements = template.drawn_after(plan, cut);
    if elements.len() != base.elements.len()
        || elements
            .iter()
            .zip(&base.elements)
            .any(|((i, _), (j, _))| i != j)
    {
        return None;
    }
    let mut run: Vec<usize> = Vec::new();
    let flush = |run: &mut Vec<usize>, canvas: &mut Pixmap| -> Option<()> {
        if !run.is_empty() {
            let tree = renderer
                .tree(&template.alone(Some(applied), run), &applied.images)
                .ok()?;
            render::paint(&tree, k, canvas);
            run.clear();
        }
        Some(())
    };
    for ((i, edited), (_, tree)) in elements.iter().zip(&base.elements) {
        deadline::check().ok()?;
        if *edited {
            run.push(*i);
        } else {
            flush(&mut run, &mut ws.canvas)?;
            render::paint(tree, k, &mut ws.canvas);
        }
    }
    flush(&mut run, &mut ws.canvas)
}

/// Paints the base for `cut` and checks it: the elements before the cut
/// and then each element from the cut on, alone, must give the template's
/// whole render, or the cut is not used (`None`). The whole render runs on
/// a second thread meanwhile: a base is built on a request's time, and the
/// first request after a start or a template edit should not pay twice.
fn build(
    renderer: &Renderer,
    template: &Template,
    cut: usize,
    k: f32,
    (width, height): (u32, u32),
) -> Result<Option<Base>, RenderError> {
    let dir = &template.images;
    let (parts, whole) = std::thread::scope(|scope| {
        let whole = scope.spawn(|| -> Result<Pixmap, RenderError> {
            let tree = renderer.tree(template.source(), dir)?;
            let mut whole = render::blank(width, height)?;
            render::paint(&tree, k, &mut whole);
            Ok(whole)
        });
        let parts = paint_parts(renderer, template, cut, k, (width, height));
        let whole = whole
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e));
        (parts, whole)
    });
    let (before, elements, default, png) = parts?;
    if whole?.data() != default.data() {
        tracing::warn!(
            template = %hex::encode(&template.hash[..8]),
            cut,
            "painting the template in parts does not give its whole render; rendering it whole"
        );
        return Ok(None);
    }
    let differs: Vec<bool> = (0..height)
        .map(|y| row(&before, y) != row(&default, y))
        .collect();
    let first = differs.iter().position(|d| *d).unwrap_or(0) as u32;
    let last = differs.iter().rposition(|d| *d).map_or(0, |y| y + 1) as u32;
    let rows = first..last.max(first);
    let stride = width as usize * 4;
    let default_rows =
        default.data()[rows.start as usize * stride..rows.end as usize * stride].to_vec();
    Ok(Some(Base {
        before,
        elements,
        differs,
        rows,
        default_rows,
        png,
    }))
}

/// The base's canvas before the cut, its element trees, the default render
/// painted from them, and that render's bands.
type Parts = (Pixmap, Vec<(usize, usvg::Tree)>, Pixmap, Bands);

fn paint_parts(
    renderer: &Renderer,
    template: &Template,
    cut: usize,
    k: f32,
    (width, height): (u32, u32),
) -> Result<Parts, RenderError> {
    let dir = &template.images;
    let before_tree = renderer.tree(&template.before_cut(cut), dir)?;
    let mut before = render::blank(width, height)?;
    render::paint(&before_tree, k, &mut before);
    let mut default = before.clone();
    let mut elements = Vec::new();
    for (i, _) in template.drawn_after(&Plan::default(), cut) {
        let tree = renderer.tree(&template.alone(None, &[i]), dir)?;
        render::paint(&tree, k, &mut default);
        elements.push((i, tree));
    }
    let png = Bands::encode(&default, &mut bands::Encoder::new(bands::BASE_LEVEL));
    Ok((before, elements, default, png))
}
