/** The job summary is HTML: messages may hold text such as <none> that must show as written. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
