"""Split a time-stamped CSV into quarterly span folders that ExampleGen's `{SPAN:2}` pattern reads.

Run once to (re)build `data/taxi/` from the pristine sample in `../shared/data`:
    python data/make_spans.py ../shared/data/chicago_taxi/data.csv data/taxi
Rows keep their original text (no re-formatting), so what ExampleGen reads is what was shipped.
"""
import argparse
import csv
import datetime
import pathlib


def quarter_of(unix_seconds: str) -> tuple[int, int]:
    moment = datetime.datetime.fromtimestamp(int(unix_seconds), tz=datetime.timezone.utc)
    return moment.year, (moment.month - 1) // 3 + 1


def split_into_spans(source: pathlib.Path, destination: pathlib.Path, time_column: str) -> list[tuple[int, str, int]]:
    with source.open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        position = header.index(time_column)
        by_quarter: dict[tuple[int, int], list[list[str]]] = {}
        for row in reader:
            by_quarter.setdefault(quarter_of(row[position]), []).append(row)
    spans = []
    for number, quarter in enumerate(sorted(by_quarter), start=1):
        folder = destination / f"span-{number:02d}"
        folder.mkdir(parents=True, exist_ok=True)
        with (folder / "data.csv").open("w", newline="") as handle:
            writer = csv.writer(handle, lineterminator="\n")
            writer.writerow(header)
            writer.writerows(by_quarter[quarter])
        # Written last: the span is complete, with its row count declared (see pipeline/spans.py).
        (folder / "_SUCCESS").write_text(f"{len(by_quarter[quarter])}\n")
        spans.append((number, f"{quarter[0]}Q{quarter[1]}", len(by_quarter[quarter])))
    return spans


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=pathlib.Path)
    parser.add_argument("destination", type=pathlib.Path)
    parser.add_argument("--time-column", default="trip_start_timestamp")
    args = parser.parse_args()
    for number, quarter, rows in split_into_spans(args.source, args.destination, args.time_column):
        print(f"span-{number:02d}  {quarter}  {rows} rows")


if __name__ == "__main__":
    main()
