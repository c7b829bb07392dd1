//! The result table: one row per figure, with the reference it is compared to and the target.

/// One measured figure.
pub struct Row {
    /// The item (1-5) the row belongs to.
    pub item: u8,
    /// What was measured.
    pub measure: String,
    /// Granary's figure, with its unit.
    pub granary: String,
    /// The reference figure, with its unit (nginx, openssl, the smallest size...), or empty.
    pub reference: String,
    /// Granary's figure over the reference, oriented so that the target reads as written.
    pub ratio: Option<f64>,
    /// The target, in words.
    pub target: &'static str,
    /// Whether the target holds, when the row has one.
    pub holds: Option<bool>,
}

/// Prints the rows as a Markdown table (it goes into `docs/performance.md` as printed).
pub fn print(rows: &[Row]) {
    println!("| # | measure | granary | reference | ratio | target | holds |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for row in rows {
        println!(
            "| {} | {} | {} | {} | {} | {} | {} |",
            row.item,
            row.measure,
            row.granary,
            row.reference,
            row.ratio
                .map_or(String::new(), |ratio| format!("{ratio:.2}×")),
            row.target,
            match row.holds {
                Some(true) => "yes",
                Some(false) => "**no**",
                None => "",
            }
        );
    }
}

/// Repeated measurements of one figure: the median, with the lowest and the highest.
pub struct Spread {
    pub median: f64,
    pub lowest: f64,
    pub highest: f64,
}

impl Spread {
    /// Of `figures`, which holds at least one.
    pub fn of(figures: impl IntoIterator<Item = f64>) -> Spread {
        let mut figures: Vec<f64> = figures.into_iter().collect();
        figures.sort_by(f64::total_cmp);
        Spread {
            median: figures[figures.len() / 2],
            lowest: figures[0],
            highest: figures[figures.len() - 1],
        }
    }

    /// Of the ratios of `figures` to `references`, taken pairwise (one per round).
    pub fn ratios(figures: &[f64], references: &[f64]) -> Spread {
        Spread::of(
            figures
                .iter()
                .zip(references)
                .map(|(figure, reference)| figure / reference),
        )
    }

    /// `lowest–highest×`, for a spread of ratios.
    pub fn ratio_range(&self) -> String {
        format!("{:.2}–{:.2}×", self.lowest, self.highest)
    }
}
