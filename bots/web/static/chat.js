// The web chat page: sends messages to /api/chat/messages and shows the replies.
// Every piece of text goes in with textContent, never innerHTML. Who is writing is the
// server's business: the page's HttpOnly cookie goes with every same-origin request.
"use strict";

const logBox = document.getElementById("log");
const statusLine = document.getElementById("status");
const form = document.getElementById("composer");
const textInput = document.getElementById("text");
const upload = document.getElementById("upload");
const picker = document.getElementById("picker");
const pickerToggle = document.getElementById("picker-toggle");

function addMessage(role, text, imageUrl, meta) {
  const div = document.createElement("div");
  div.className = "msg " + role;
  if (text) div.appendChild(document.createTextNode(text));
  if (imageUrl) {
    const img = document.createElement("img");
    img.src = imageUrl;
    img.alt = role === "bot" ? "sticker from the bot" : "your sticker";
    div.appendChild(img);
  }
  if (meta) {
    const small = document.createElement("div");
    small.className = "meta";
    small.textContent = meta;
    div.appendChild(small);
  }
  logBox.appendChild(div);
  logBox.scrollTop = logBox.scrollHeight;
  return div;
}

async function send(body, isForm) {
  statusLine.textContent = "StickerBot is typing…";
  try {
    const response = await fetch("/api/chat/messages", {
      method: "POST",
      credentials: "same-origin",
      headers: isForm ? {} : { "Content-Type": "application/json" },
      body: isForm ? body : JSON.stringify(body),
    });
    const data = await response.json();
    if (!response.ok) {
      addMessage("error", (data.error && data.error.message) || "Something went wrong.");
      return;
    }
    const reply = data.reply;
    addMessage("bot", reply.text, reply.sticker && reply.sticker.url,
      `you seem: ${reply.user_emotion} · ${reply.latency_ms} ms`);
  } catch (err) {
    addMessage("error", "The bot could not be reached. Is it still running?");
  } finally {
    statusLine.textContent = "";
  }
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = textInput.value.trim();
  if (!text) return;
  textInput.value = "";
  addMessage("user", text);
  send({ text, message_id: crypto.randomUUID() }, false);
});

upload.addEventListener("change", () => {
  const file = upload.files[0];
  if (!file) return;
  const body = new FormData();
  body.append("text", textInput.value.trim());
  body.append("message_id", crypto.randomUUID());
  body.append("sticker", file);
  const preview = /\.(tgs|webm)$/i.test(file.name) ? null : URL.createObjectURL(file);
  addMessage("user", textInput.value.trim() || (preview ? "" : `[${file.name}]`), preview);
  textInput.value = "";
  upload.value = "";
  send(body, true);
});

async function loadPicker() {
  const response = await fetch("/api/stickers");
  const { stickers } = await response.json();
  const emotions = [...new Set(stickers.map((s) => s.emotion))].sort();
  const nav = document.getElementById("emotions");
  const grid = document.getElementById("grid");
  function show(emotion) {
    grid.replaceChildren();
    for (const button of nav.children) button.classList.toggle("active", button.dataset.emotion === emotion);
    for (const sticker of stickers.filter((s) => s.emotion === emotion)) {
      const img = document.createElement("img");
      img.src = sticker.url;
      img.alt = sticker.name;
      img.title = sticker.name;
      img.loading = "lazy";
      img.addEventListener("click", () => {
        const text = textInput.value.trim();
        textInput.value = "";
        addMessage("user", text, sticker.url);
        send({ text, sticker_id: sticker.id, message_id: crypto.randomUUID() }, false);
      });
      grid.appendChild(img);
    }
  }
  for (const emotion of emotions) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = emotion;
    button.dataset.emotion = emotion;
    button.addEventListener("click", () => show(emotion));
    nav.appendChild(button);
  }
  if (emotions.length) show(emotions.includes("happiness") ? "happiness" : emotions[0]);
}

pickerToggle.addEventListener("click", () => {
  picker.hidden = !picker.hidden;
  pickerToggle.setAttribute("aria-expanded", String(!picker.hidden));
});

loadPicker();
