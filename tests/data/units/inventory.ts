import { Item } from "./item";

export interface Stock {
  sku: string;
  count: number;
}

export abstract class Store<T extends Stock> {
  protected items: T[] = [];

  @logged
  add(item: T): void {
    this.items.push(item);
  }

  abstract price(sku: string): number;

  total(): number {
    return this.items.reduce((sum, item) => sum + this.price(item.sku) * item.count, 0);
  }
}

export namespace Reports {
  export function lowStock(stock: Stock[]): string[] {
    return stock.filter((s) => s.count < 3).map((s) => s.sku);
  }
}

export const byCount = (a: Stock, b: Stock): number => a.count - b.count;
