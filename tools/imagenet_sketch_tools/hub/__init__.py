"""The Hugging Face hub package: parquet export, dataset card, push."""
