//! PNG output and input for greyscale images: 8x8 sample grids, a strip of Langevin
//! trajectory snapshots (rows = samples, columns = time), and reading a folder of PNGs.

use crate::error::{Error, Result};
use crate::idx::Images;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

/// Pixels of padding between tiles (drawn mid-grey so black digits stay visible).
const PAD: usize = 2;
const PAD_VALUE: u8 = 128;

/// Tiles `images` row-major into a `rows x cols` canvas with 2 grey pixels between tiles;
/// missing tiles stay padding-grey. Returns `(width, height, pixels)`.
pub fn tile(images: &Images, rows: usize, cols: usize) -> (usize, usize, Vec<u8>) {
    let (h, w) = (images.rows(), images.cols());
    let width = cols * (w + PAD) + PAD;
    let height = rows * (h + PAD) + PAD;
    let mut canvas = vec![PAD_VALUE; width * height];
    for k in 0..images.len().min(rows * cols) {
        let (r, c) = (k / cols, k % cols);
        let (y0, x0) = (PAD + r * (h + PAD), PAD + c * (w + PAD));
        let img = images.image(k);
        for y in 0..h {
            let dst = (y0 + y) * width + x0;
            canvas[dst..dst + w].copy_from_slice(&img[y * w..(y + 1) * w]);
        }
    }
    (width, height, canvas)
}

/// Writes the first 64 images as an 8x8 grid PNG (fewer images leave grey tiles).
pub fn save_grid(path: impl AsRef<Path>, images: &Images) -> Result<()> {
    let (w, h, px) = tile(images, 8, 8);
    write_png(path.as_ref(), w, h, &px)
}

/// Writes a trajectory strip: `snapshots[t]` holds the same samples at time `t`; row `i` of
/// the PNG shows sample `i` left to right through time. All snapshots must have the same
/// number and size of images.
pub fn save_trajectory_strip(path: impl AsRef<Path>, snapshots: &[Images]) -> Result<()> {
    let Some(first) = snapshots.first() else {
        return Err(Error::invalid("trajectory", "no snapshots"));
    };
    let same =
        |s: &Images| (s.len(), s.rows(), s.cols()) == (first.len(), first.rows(), first.cols());
    if let Some(t) = snapshots.iter().position(|s| !same(s)) {
        return Err(Error::invalid(
            "trajectory",
            format!("snapshot {t} differs in count or size from snapshot 0"),
        ));
    }
    // Re-order into sample-major so that `tile` lays samples on rows.
    let (n, t) = (first.len(), snapshots.len());
    let mut pixels = Vec::with_capacity(n * t * first.dim());
    for i in 0..n {
        for s in snapshots {
            pixels.extend_from_slice(s.image(i));
        }
    }
    let stacked = Images::new(n * t, first.rows(), first.cols(), pixels)?;
    let (w, h, px) = tile(&stacked, n, t);
    write_png(path.as_ref(), w, h, &px)
}

/// Writes an 8-bit greyscale PNG.
pub fn write_png(path: &Path, width: usize, height: usize, pixels: &[u8]) -> Result<()> {
    let err = |what: String| Error::Png {
        path: path.to_path_buf(),
        what,
    };
    let file = std::fs::File::create(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut enc = png::Encoder::new(BufWriter::new(file), width as u32, height as u32);
    enc.set_color(png::ColorType::Grayscale);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header().map_err(|e| err(e.to_string()))?;
    writer
        .write_image_data(pixels)
        .map_err(|e| err(e.to_string()))?;
    writer.finish().map_err(|e| err(e.to_string()))
}

/// Reads every `*.png` in `dir` (sorted by name) as one greyscale stack. Accepts 8-bit grey
/// and grey-looking RGB/RGBA (equal channels); all images must share one size.
pub fn read_png_dir(dir: impl AsRef<Path>) -> Result<Images> {
    let dir = dir.as_ref();
    let io = |source| Error::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("png")))
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(Error::invalid(
            "PNG folder",
            format!("{}: no .png files", dir.display()),
        ));
    }
    let mut size = None;
    let mut pixels = Vec::new();
    for p in &paths {
        let (w, h, px) = read_png_grey(p)?;
        if *size.get_or_insert((w, h)) != (w, h) {
            let (w0, h0) = size.unwrap_or((w, h));
            return Err(Error::Png {
                path: p.clone(),
                what: format!("size {w}x{h} differs from the first image's {w0}x{h0}"),
            });
        }
        pixels.extend_from_slice(&px);
    }
    let (w, h) = size.unwrap_or((0, 0));
    Images::new(paths.len(), h, w, pixels)
}

/// Reads one PNG as 8-bit grey: `(width, height, pixels)`.
fn read_png_grey(path: &Path) -> Result<(usize, usize, Vec<u8>)> {
    let err = |what: String| Error::Png {
        path: path.to_path_buf(),
        what,
    };
    let file = std::fs::File::open(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut dec = png::Decoder::new(std::io::BufReader::new(file));
    dec.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
    let mut reader = dec.read_info().map_err(|e| err(e.to_string()))?;
    let size = reader
        .output_buffer_size()
        .ok_or_else(|| err("image too large".into()))?;
    let mut buf = vec![0; size];
    let info = reader
        .next_frame(&mut buf)
        .map_err(|e| err(e.to_string()))?;
    let (w, h) = (info.width as usize, info.height as usize);
    let ch = info.color_type.samples();
    let buf = &buf[..info.buffer_size()];
    let mut out = Vec::with_capacity(w * h);
    for px in buf.chunks_exact(ch) {
        if ch >= 3 && (px[0] != px[1] || px[1] != px[2]) {
            return Err(err("colour image: only greyscale PNGs are supported".into()));
        }
        out.push(px[0]);
    }
    Ok((w, h, out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stack(n: usize, base: u8) -> Images {
        let px = (0..n * 4).map(|i| base.wrapping_add(i as u8)).collect();
        Images::new(n, 2, 2, px).unwrap()
    }

    #[test]
    fn tile_places_images_row_major_with_padding() {
        let (w, h, px) = tile(&stack(3, 10), 2, 2);
        assert_eq!((w, h), (2 * 4 + 2, 2 * 4 + 2));
        // Image 2 (row 1, col 0) starts at (y, x) = (PAD + 4, PAD).
        assert_eq!(px[(PAD + 4) * w + PAD], 10 + 8);
        // The missing fourth tile stays grey.
        assert_eq!(px[(PAD + 4) * w + PAD + 4], PAD_VALUE);
    }

    #[test]
    fn grid_and_strip_round_trip_through_png() {
        let dir = tempfile::tempdir().unwrap();
        let g = dir.path().join("grid.png");
        save_grid(&g, &stack(64, 0)).unwrap();
        let (w, h, px) = read_png_grey(&g).unwrap();
        assert_eq!((w, h), (8 * 4 + 2, 8 * 4 + 2));
        assert_eq!(px, tile(&stack(64, 0), 8, 8).2);

        // 3 samples, 4 times: row i, column t shows sample i at time t.
        let snaps: Vec<Images> = (0..4).map(|t| stack(3, 50 * t as u8)).collect();
        let s = dir.path().join("strip.png");
        save_trajectory_strip(&s, &snaps).unwrap();
        let (w, _, px) = read_png_grey(&s).unwrap();
        let (row, col) = (2, 3);
        assert_eq!(
            px[(PAD + row * 4) * w + PAD + col * 4],
            snaps[col].image(row)[0]
        );
        assert!(save_trajectory_strip(&s, &[stack(3, 0), stack(2, 0)]).is_err());
    }

    #[test]
    fn reads_a_png_folder_and_rejects_mixed_sizes() {
        let dir = tempfile::tempdir().unwrap();
        for (i, v) in [7u8, 200].iter().enumerate() {
            write_png(&dir.path().join(format!("{i}.png")), 3, 2, &[*v; 6]).unwrap();
        }
        let im = read_png_dir(dir.path()).unwrap();
        assert_eq!((im.len(), im.rows(), im.cols()), (2, 2, 3));
        assert_eq!(im.image(1), &[200; 6]);
        write_png(&dir.path().join("z.png"), 2, 2, &[0; 4]).unwrap();
        let msg = read_png_dir(dir.path()).unwrap_err().to_string();
        assert!(msg.contains("z.png") && msg.contains("differs"), "{msg}");
    }
}
