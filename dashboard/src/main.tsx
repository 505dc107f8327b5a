// Entry point of the dashboard bundle (dist/app.js): styles, then the app into #app.
import 'uplot/dist/uPlot.min.css';
import './styles.css';
import { render } from 'preact';
import { App } from './components/app';

render(<App />, document.getElementById('app')!);
