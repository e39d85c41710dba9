import { readFile } from "node:fs/promises";
import path from "node:path";

const DEFAULT_LIMIT = 10;

// Reads the stock file and parses it.
export async function loadStock(dir) {
  const text = await readFile(path.join(dir, "stock.json"), "utf8");
  return JSON.parse(text);
}

export class Inventory extends Map {
  limit = DEFAULT_LIMIT;

  constructor(items) {
    super(items);
  }

  /** Units of `sku` left, never negative. */
  remaining(sku) {
    return Math.max(0, this.get(sku) ?? 0);
  }

  take = (sku, n) => {
    this.set(sku, this.remaining(sku) - n);
  };
}

const low = (inventory) => [...inventory.keys()].filter((sku) => inventory.remaining(sku) < 3);

console.log(low(new Inventory([["bolt", 2]])));
