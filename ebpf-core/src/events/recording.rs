//! Raw ring-buffer records saved to a file and read back, so real traffic can
//! become a test fixture or a benchmark input. Format: for each record, its
//! length as u32 little-endian, then its bytes.

use std::io::{self, Write};

pub fn write_record(w: &mut impl Write, record: &[u8]) -> io::Result<()> {
    w.write_all(&(record.len() as u32).to_le_bytes())?;
    w.write_all(record)
}

/// Iterates the records of a recording; a truncated tail ends the iteration.
pub fn read_records(mut data: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        let len = u32::from_le_bytes(data.get(..4)?.try_into().ok()?) as usize;
        let record = data.get(4..4 + len)?;
        data = &data[4 + len..];
        Some(record)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_truncated_tail() {
        let mut buf = Vec::new();
        write_record(&mut buf, b"abc").unwrap();
        write_record(&mut buf, b"").unwrap();
        write_record(&mut buf, b"defg").unwrap();
        let got: Vec<&[u8]> = read_records(&buf).collect();
        assert_eq!(got, vec![&b"abc"[..], b"", b"defg"]);
        let got: Vec<&[u8]> = read_records(&buf[..buf.len() - 1]).collect();
        assert_eq!(got, vec![&b"abc"[..], b""]);
    }
}
