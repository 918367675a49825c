"""The flags every index build takes: how inputs are read and where the Beam pipeline runs."""

import argparse


def add_input_and_runner_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store-text", action="store_true", help="keep document text in the docstore")
    parser.add_argument("--format", default="auto", help="input format: auto, jsonl, parquet, text")
    parser.add_argument("--text-field", default="text")
    parser.add_argument("--id-field", default="id")
    parser.add_argument("--workers", type=int, default=1, help="local Beam workers (multi-processing when > 1)")
    parser.add_argument("--runner", choices=["local", "dataflow"], default="local")
    parser.add_argument("--project", help="Dataflow: Google Cloud project")
    parser.add_argument("--region", help="Dataflow: region")
    parser.add_argument("--temp-location", help="Dataflow: gs:// temp location")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing index at --output")
