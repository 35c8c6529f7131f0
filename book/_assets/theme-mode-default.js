// sphinx-book-theme sets <html data-mode> from localStorage and leaves it empty on a first visit,
// and pydata-sphinx-theme then logs "Got invalid theme mode" as a console error. Default to "auto".
if (!document.documentElement.dataset.mode) {
  document.documentElement.dataset.mode = "auto";
}
