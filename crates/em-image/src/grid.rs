//! PNG output and input for greyscale and RGB images: 8x8 sample grids, a strip of Langevin
//! trajectory snapshots (rows = samples, columns = time), and reading a folder of PNGs.
//! Stacks are CHW per image ([`Images`]); PNG rows are interleaved (RGBRGB...), so tiling
//! converts between the two.

use crate::error::{Error, Result};
use crate::idx::Images;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

/// Pixels of padding between tiles (drawn mid-grey so black digits stay visible).
const PAD: usize = 2;
const PAD_VALUE: u8 = 128;

/// Tiles `images` row-major into a `rows x cols` canvas with 2 grey pixels between tiles;
/// missing tiles stay padding-grey. Returns `(width, height, pixels)`, the pixels interleaved
/// with `images.channels()` samples each (1: grey, 3: RGB), as [`write_png`] takes them.
pub fn tile(images: &Images, rows: usize, cols: usize) -> (usize, usize, Vec<u8>) {
    let [ch, h, w] = images.shape();
    let width = cols * (w + PAD) + PAD;
    let height = rows * (h + PAD) + PAD;
    let mut canvas = vec![PAD_VALUE; width * height * ch];
    for k in 0..images.len().min(rows * cols) {
        let (r, c) = (k / cols, k % cols);
        let (y0, x0) = (PAD + r * (h + PAD), PAD + c * (w + PAD));
        let img = images.image(k);
        for y in 0..h {
            for x in 0..w {
                let dst = ((y0 + y) * width + x0 + x) * ch;
                for p in 0..ch {
                    canvas[dst + p] = img[(p * h + y) * w + x];
                }
            }
        }
    }
    (width, height, canvas)
}

/// Writes the first 64 images as an 8x8 grid PNG (fewer images leave grey tiles); grey or
/// RGB as the stack is.
pub fn save_grid(path: impl AsRef<Path>, images: &Images) -> Result<()> {
    let (w, h, px) = tile(images, 8, 8);
    write_png(path.as_ref(), w, h, images.channels(), &px)
}

/// Writes a trajectory strip: `snapshots[t]` holds the same samples at time `t`; row `i` of
/// the PNG shows sample `i` left to right through time. All snapshots must have the same
/// number, channels and size of images.
pub fn save_trajectory_strip(path: impl AsRef<Path>, snapshots: &[Images]) -> Result<()> {
    let Some(first) = snapshots.first() else {
        return Err(Error::invalid("trajectory", "no snapshots"));
    };
    let same = |s: &Images| (s.len(), s.shape()) == (first.len(), first.shape());
    if let Some(t) = snapshots.iter().position(|s| !same(s)) {
        return Err(Error::invalid(
            "trajectory",
            format!("snapshot {t} differs in count or shape from snapshot 0"),
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
    let [c, h, w] = first.shape();
    let stacked = Images::with_channels(n * t, c, h, w, pixels)?;
    let (pw, ph, px) = tile(&stacked, n, t);
    write_png(path.as_ref(), pw, ph, c, &px)
}

/// Writes an 8-bit PNG: `channels` 1 (greyscale) or 3 (RGB), `pixels` interleaved, row-major.
pub fn write_png(
    path: &Path,
    width: usize,
    height: usize,
    channels: usize,
    pixels: &[u8],
) -> Result<()> {
    let err = |what: String| Error::Png {
        path: path.to_path_buf(),
        what,
    };
    let color = match channels {
        1 => png::ColorType::Grayscale,
        3 => png::ColorType::Rgb,
        c => return Err(err(format!("{c} channels; only 1 (grey) or 3 (RGB)"))),
    };
    if pixels.len() != width * height * channels {
        return Err(err(format!(
            "{} bytes for a {width}x{height} image with {channels} channel(s)",
            pixels.len()
        )));
    }
    let file = std::fs::File::create(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut enc = png::Encoder::new(BufWriter::new(file), width as u32, height as u32);
    enc.set_color(color);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header().map_err(|e| err(e.to_string()))?;
    writer
        .write_image_data(pixels)
        .map_err(|e| err(e.to_string()))?;
    writer.finish().map_err(|e| err(e.to_string()))
}

/// Reads every `*.png` in `dir` (sorted by name) as one stack, all of one size. 8-bit grey,
/// grey+alpha, RGB and RGBA are accepted (alpha is dropped). When every image looks grey
/// (grey PNGs, or RGB with equal channels) the stack is greyscale; otherwise it is RGB, grey
/// images having their value in all three channels.
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
    let mut decoded = Vec::with_capacity(paths.len());
    for p in &paths {
        let png = read_png(p)?;
        let (w, h) = (png.width, png.height);
        if *size.get_or_insert((w, h)) != (w, h) {
            let (w0, h0) = size.unwrap_or((w, h));
            return Err(Error::Png {
                path: p.clone(),
                what: format!("size {w}x{h} differs from the first image's {w0}x{h0}"),
            });
        }
        decoded.push(png);
    }
    let (w, h) = size.unwrap_or((0, 0));
    let channels = decoded.iter().map(|d| d.channels).max().unwrap_or(1);
    let mut pixels = Vec::with_capacity(paths.len() * channels * w * h);
    for d in &decoded {
        // Interleaved to CHW; a grey image fills every channel with its value.
        for p in 0..channels {
            let q = p.min(d.channels - 1);
            pixels.extend(d.pixels.iter().skip(q).step_by(d.channels));
        }
    }
    Images::with_channels(paths.len(), channels, h, w, pixels)
}

/// A decoded PNG: interleaved 8-bit pixels with 1 (grey-looking) or 3 (colour) channels.
struct Decoded {
    width: usize,
    height: usize,
    channels: usize,
    pixels: Vec<u8>,
}

/// Reads one PNG as 8-bit grey (1 channel) when it has no colour, else as RGB (3 channels).
fn read_png(path: &Path) -> Result<Decoded> {
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
    let (width, height) = (info.width as usize, info.height as usize);
    let ch = info.color_type.samples();
    let buf = &buf[..info.buffer_size()];
    let grey = ch < 3 || buf.chunks_exact(ch).all(|p| p[0] == p[1] && p[1] == p[2]);
    let channels = if grey { 1 } else { 3 };
    let mut pixels = Vec::with_capacity(width * height * channels);
    for px in buf.chunks_exact(ch) {
        pixels.extend_from_slice(&px[..channels]);
    }
    Ok(Decoded {
        width,
        height,
        channels,
        pixels,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stack(n: usize, base: u8) -> Images {
        let px = (0..n * 4).map(|i| base.wrapping_add(i as u8)).collect();
        Images::new(n, 2, 2, px).unwrap()
    }

    /// `n` RGB 2x2 images whose channels differ (red = base + i, green = 2 x red, blue = 255 - red).
    fn colour(n: usize, base: u8) -> Images {
        let mut px = Vec::new();
        for i in 0..n {
            let red: Vec<u8> = (0..4)
                .map(|p| base.wrapping_add((4 * i + p) as u8))
                .collect();
            px.extend(red.iter().copied());
            px.extend(red.iter().map(|r| r.wrapping_mul(2)));
            px.extend(red.iter().map(|r| 255 - r));
        }
        Images::with_channels(n, 3, 2, 2, px).unwrap()
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
    fn tile_interleaves_colour_channels() {
        let im = colour(2, 0);
        let (w, _, px) = tile(&im, 1, 2);
        assert_eq!(px.len(), w * (2 + 2 * PAD) * 3);
        // Image 1, pixel (1, 0): CHW index c * 4 + 2 -> canvas (PAD + 1, PAD + 4), RGB.
        let at = ((PAD + 1) * w + PAD + 4) * 3;
        let src = im.image(1);
        assert_eq!(&px[at..at + 3], &[src[2], src[6], src[10]]);
        assert_eq!(&px[..3], &[PAD_VALUE; 3]);
    }

    #[test]
    fn grid_and_strip_round_trip_through_png() {
        let dir = tempfile::tempdir().unwrap();
        let g = dir.path().join("grid.png");
        save_grid(&g, &stack(64, 0)).unwrap();
        let d = read_png(&g).unwrap();
        assert_eq!((d.width, d.height, d.channels), (8 * 4 + 2, 8 * 4 + 2, 1));
        assert_eq!(d.pixels, tile(&stack(64, 0), 8, 8).2);

        // 3 samples, 4 times: row i, column t shows sample i at time t.
        let snaps: Vec<Images> = (0..4).map(|t| stack(3, 50 * t as u8)).collect();
        let s = dir.path().join("strip.png");
        save_trajectory_strip(&s, &snaps).unwrap();
        let d = read_png(&s).unwrap();
        let (row, col) = (2, 3);
        assert_eq!(
            d.pixels[(PAD + row * 4) * d.width + PAD + col * 4],
            snaps[col].image(row)[0]
        );
        assert!(save_trajectory_strip(&s, &[stack(3, 0), stack(2, 0)]).is_err());
        assert!(save_trajectory_strip(&s, &[colour(3, 0), stack(3, 0)]).is_err());
    }

    #[test]
    fn rgb_grid_and_strip_round_trip_through_read_png_dir() {
        let dir = tempfile::tempdir().unwrap();
        let im = colour(64, 3);
        save_grid(dir.path().join("a_grid.png"), &im).unwrap();
        // The whole grid comes back as one RGB image, CHW, equal to the tiled stack.
        let back = read_png_dir(dir.path()).unwrap();
        let (w, h, px) = tile(&im, 8, 8);
        assert_eq!((back.len(), back.shape()), (1, [3, h, w]));
        let plane = |c: usize| px.iter().skip(c).step_by(3).copied().collect::<Vec<u8>>();
        let want: Vec<u8> = (0..3).flat_map(plane).collect();
        assert_eq!(back.pixels(), want.as_slice());
        // A tile cut out of the grid is the first image again.
        let tile0: Vec<u8> = (0..3)
            .flat_map(|c| {
                let b = &back;
                (0..2).flat_map(move |y| {
                    (0..2).map(move |x| b.image(0)[(c * h + PAD + y) * w + PAD + x])
                })
            })
            .collect();
        assert_eq!(tile0, im.image(0));

        let strip = tempfile::tempdir().unwrap();
        let snaps: Vec<Images> = (0..3).map(|t| colour(2, 40 * t)).collect();
        save_trajectory_strip(strip.path().join("s.png"), &snaps).unwrap();
        let back = read_png_dir(strip.path()).unwrap();
        assert_eq!(back.channels(), 3);
        let [_, h, w] = back.shape();
        // Row 1, column 2: sample 1 at time 2, blue plane, pixel (0, 1).
        let (y, x) = (PAD + 4, PAD + 2 * 4 + 1);
        assert_eq!(back.image(0)[(2 * h + y) * w + x], snaps[2].image(1)[8 + 1]);
    }

    #[test]
    fn reads_a_png_folder_and_rejects_mixed_sizes() {
        let dir = tempfile::tempdir().unwrap();
        for (i, v) in [7u8, 200].iter().enumerate() {
            write_png(&dir.path().join(format!("{i}.png")), 3, 2, 1, &[*v; 6]).unwrap();
        }
        // Grey-looking RGB stays greyscale.
        write_png(&dir.path().join("2.png"), 3, 2, 3, &[9; 18]).unwrap();
        let im = read_png_dir(dir.path()).unwrap();
        assert_eq!((im.len(), im.shape()), (3, [1, 2, 3]));
        assert_eq!(im.image(1), &[200; 6]);
        assert_eq!(im.image(2), &[9; 6]);
        // One colour image makes the stack RGB; grey images fill all three channels.
        let mut rgb = [9u8; 18];
        rgb[1] = 10;
        write_png(&dir.path().join("3.png"), 3, 2, 3, &rgb).unwrap();
        let im = read_png_dir(dir.path()).unwrap();
        assert_eq!((im.len(), im.shape()), (4, [3, 2, 3]));
        assert_eq!(im.image(1), &[200; 18]);
        assert_eq!(im.image(3)[6], 10);
        write_png(&dir.path().join("z.png"), 2, 2, 1, &[0; 4]).unwrap();
        let msg = read_png_dir(dir.path()).unwrap_err().to_string();
        assert!(msg.contains("z.png") && msg.contains("differs"), "{msg}");
        let bad = dir.path().join("bad.png");
        assert!(write_png(&bad, 2, 2, 2, &[0; 8]).is_err());
        assert!(write_png(&bad, 2, 2, 3, &[0; 4]).is_err());
    }
}
