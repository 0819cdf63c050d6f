// Behaviour the pages need, here rather than inline: the Content-Security-Policy allows
// scripts from the app's own static files only (no inline <script>, no onclick="...").

// A button with data-action="print" prints the page (the final statement).
document.addEventListener("click", (event) => {
  const button = event.target.closest("[data-action='print']");
  if (button) {
    window.print();
  }
});
