// The widget manager (@jupyter-widgets/html-manager 1.x) typesets widget labels with the MathJax 2
// call `MathJax.Hub.Queue(["Typeset", MathJax.Hub, element])`; the book loads MathJax 3, which has
// no `Hub`. Give every MathJax object that is assigned to `window.MathJax` (the config first, then
// MathJax 3 itself) a `Hub.Queue` that forwards to MathJax 3's `typesetPromise`.
(function () {
  function patch(mj) {
    if (mj && typeof mj === "object" && !mj.Hub) {
      Object.defineProperty(mj, "Hub", {
        enumerable: false,
        configurable: true,
        value: {
          Queue: function (job) {
            var el = Array.isArray(job) ? job[2] : undefined;
            if (window.MathJax && typeof window.MathJax.typesetPromise === "function") {
              window.MathJax.typesetPromise(el ? [el] : undefined).catch(function () {});
            }
          },
        },
      });
    }
    return mj;
  }
  var current = patch(window.MathJax);
  Object.defineProperty(window, "MathJax", {
    configurable: true,
    get: function () { return current; },
    set: function (value) { current = patch(value); },
  });
})();
