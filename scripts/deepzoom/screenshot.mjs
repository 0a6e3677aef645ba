// Screenshot of an OpenSeadragon page (`shc tiles` or `shc serve`) in headless Chromium (@sparticuz/chromium +
// puppeteer-core), taken once the viewer (window.viewer) has drawn every tile its first screen needs:
//   node screenshot.mjs URL OUT.png
// Prints how long that took from the start of navigation and how many tiles the page fetched, then the same
// after a reload (the browser fetches the tiles again: `shc serve` answers from its cache). Exits 1 when a
// request fails or the screen is not drawn within two minutes.
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
const failed = [];
let tiles = 0;
page.on("response", (response) => {
  if (!response.ok()) failed.push(`${response.status()} ${response.url()}`);
  else if (response.url().includes("/image_files/")) tiles += 1;
});
page.on("requestfailed", (request) => failed.push(`${request.failure()?.errorText} ${request.url()}`));
page.on("pageerror", (error) => failed.push(`page error: ${error.message}`));

async function firstScreen(navigate) {
  tiles = 0;
  await navigate();
  const drawn = await page.waitForFunction(
    () => window.viewer?.world.getItemCount() > 0 && window.viewer.world.getItemAt(0).getFullyLoaded() &&
      performance.now(),
    { polling: "raf", timeout: 120000 },
  );
  return `${(await drawn.jsonValue()).toFixed(0)} ms (${tiles} tiles)`;
}

const first = await firstScreen(() => page.goto(url));
await page.screenshot({ path: out });
const again = await firstScreen(() => page.reload());
await browser.close();
if (failed.length) {
  console.error(`failed requests:\n${failed.join("\n")}`);
  process.exit(1);
}
console.log(`first screen fully drawn after ${first}; after a reload: ${again}`);
