// A wasi:http/proxy hello in JavaScript, built into a component by componentize-js.
addEventListener("fetch", (event) =>
  event.respondWith(new Response("Hello from a JavaScript component!\n", { headers: { "content-type": "text/plain" } })),
);
