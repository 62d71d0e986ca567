// What the panels share: the lists they show and the assistant the chat talks to.

export const state = {
  models: [],
  assistants: [],
  files: [],
  stores: [],
  assistant: null, // the selected assistant object (null: a new, unsaved one)
};

export const fileName = (id) => state.files.find((f) => f.id === id)?.filename || id;
