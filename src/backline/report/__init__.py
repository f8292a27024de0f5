"""backline.report"""
