// Light/dark theme: follows prefers-color-scheme until the person picks one with the toggle (kept
// in localStorage). The choice is an attribute on <html>; styles.css does the rest.
export type Theme = 'light' | 'dark';
const KEY = 'apiary.theme';

export function storedTheme(): Theme | null {
  const t = localStorage.getItem(KEY);
  return t === 'light' || t === 'dark' ? t : null;
}

export function systemTheme(): Theme {
  return matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light';
}

export function applyTheme(theme: Theme | null): void {
  if (theme) {
    localStorage.setItem(KEY, theme);
    document.documentElement.dataset.theme = theme;
  } else {
    localStorage.removeItem(KEY);
    delete document.documentElement.dataset.theme;
  }
}

export function currentTheme(): Theme {
  return storedTheme() ?? systemTheme();
}
