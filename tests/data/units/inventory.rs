use std::collections::HashMap;
use std::fmt;

/// Units by SKU.
#[derive(Debug, Default)]
pub struct Stock {
    counts: HashMap<String, u32>,
}

impl Stock {
    pub const LIMIT: u32 = 100;

    /// Removes `n` units, if there are enough.
    pub fn take(&mut self, sku: &str, n: u32) -> Option<u32> {
        let left = self.counts.get(sku)?.checked_sub(n)?;
        self.counts.insert(sku.to_string(), left);
        Some(left)
    }
}

impl fmt::Display for Stock {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{} skus", self.counts.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_more_than_there_is() {
        let mut stock = Stock::default();
        assert_eq!(stock.take("bolt", 1), None);
    }
}
