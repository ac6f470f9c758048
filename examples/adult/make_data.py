"""Copies UCI Adult into examples/adult/data/span-01 in the form the pipeline reads.

    python examples/adult/make_data.py [--source ../shared/data/adult/adult.csv]

Column names get underscores (education-num -> education_num; income-per-year -> income) so they
are valid TensorFlow names; "?" (Adult's missing value) becomes an empty cell, which ExampleGen
reads as a missing value. The span's _SUCCESS marker holds its row count.
"""
import argparse
import csv
import pathlib

HERE = pathlib.Path(__file__).resolve().parent
RENAMED = {"income-per-year": "income"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", default=str(HERE.parents[2] / "shared" / "data" / "adult" / "adult.csv"))
    args = parser.parse_args()
    span = HERE / "data" / "span-01"
    span.mkdir(parents=True, exist_ok=True)
    with open(args.source, newline="") as source, open(span / "data.csv", "w", newline="") as target:
        reader = csv.reader(source)
        header = [RENAMED.get(name, name.replace("-", "_")) for name in next(reader)]
        writer = csv.writer(target)
        writer.writerow(header)
        rows = 0
        for row in reader:
            writer.writerow(["" if cell.strip() == "?" else cell.strip() for cell in row])
            rows += 1
    (span / "_SUCCESS").write_text(f"{rows}\n")
    print(f"{rows} rows -> {span / 'data.csv'}")


if __name__ == "__main__":
    main()
