// Screenshot of a page in headless Chromium (@sparticuz/chromium + puppeteer-core): node screenshot.mjs URL OUT.png
import chromium from "@sparticuz/chromium";
import puppeteer from "puppeteer-core";
const [url, out] = process.argv.slice(2);
const browser = await puppeteer.launch({
  args: [...chromium.args, "--allow-file-access-from-files"],
  executablePath: await chromium.executablePath(),
  headless: true,
  defaultViewport: { width: 1024, height: 768 },
});
const page = await browser.newPage();
await page.goto(url, { waitUntil: "networkidle0" });
await new Promise((r) => setTimeout(r, 2000));
await page.screenshot({ path: out });
await browser.close();
console.log("ok");
